//! Values crossing between Rust and either database: SQLite's five storage classes, which
//! PostgreSQL's columns (BIGINT, DOUBLE PRECISION, TEXT, BYTEA) map onto one to one.

/// A value owned (rows that arrive from another thread).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Self::Null => ValueRef::Null,
            Self::Integer(i) => ValueRef::Integer(*i),
            Self::Real(f) => ValueRef::Real(*f),
            Self::Text(t) => ValueRef::Text(t),
            Self::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// A value borrowed from a row or a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Integer(_) => "an integer",
            Self::Real(_) => "a real number",
            Self::Text(_) => "text",
            Self::Blob(_) => "a blob",
        }
    }

    pub fn as_str(&self) -> Result<&'a str, String> {
        match self {
            Self::Text(t) => Ok(t),
            other => Err(format!("expected text, found {}", other.kind())),
        }
    }

    pub fn as_str_or_null(&self) -> Result<Option<&'a str>, String> {
        match self {
            Self::Null => Ok(None),
            other => other.as_str().map(Some),
        }
    }

    pub fn as_blob(&self) -> Result<&'a [u8], String> {
        match self {
            Self::Blob(b) => Ok(b),
            other => Err(format!("expected a blob, found {}", other.kind())),
        }
    }

    pub fn to_owned(&self) -> Value {
        match *self {
            Self::Null => Value::Null,
            Self::Integer(i) => Value::Integer(i),
            Self::Real(f) => Value::Real(f),
            Self::Text(t) => Value::Text(t.to_owned()),
            Self::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

/// A Rust value that can be a statement's parameter.
pub trait ToValue {
    fn value_ref(&self) -> ValueRef<'_>;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn value_ref(&self) -> ValueRef<'_> {
        match self {
            Some(v) => v.value_ref(),
            None => ValueRef::Null,
        }
    }
}

impl ToValue for Value {
    fn value_ref(&self) -> ValueRef<'_> {
        self.as_ref()
    }
}

impl ToValue for str {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToValue for String {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToValue for [u8] {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> ToValue for [u8; N] {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToValue for bool {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn value_ref(&self) -> ValueRef<'_> {
                // Counts and indexes beyond i64 cannot occur; saturate rather than wrap.
                ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
        impl FromValue for $t {
            fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
                match v {
                    ValueRef::Integer(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {}", other.kind())),
                }
            }
        }
    )*};
}
integer!(i64, i32, u32, u64, usize, u16, u8);

/// A Rust value that can be read from a column.
pub trait FromValue: Sized {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String>;
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for String {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        v.as_str().map(str::to_owned)
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        v.as_blob().map(<[u8]>::to_vec)
    }
}

impl<const N: usize> FromValue for [u8; N] {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        let b = v.as_blob()?;
        b.try_into()
            .map_err(|_| format!("expected {N} bytes, found {}", b.len()))
    }
}

impl FromValue for bool {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Integer(i) => Ok(i != 0),
            other => Err(format!("expected 0 or 1, found {}", other.kind())),
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {}", other.kind())),
        }
    }
}

impl FromValue for Value {
    fn from_value(v: ValueRef<'_>) -> Result<Self, String> {
        Ok(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_refuse_what_does_not_fit_rather_than_wrap() {
        assert_eq!(u32::from_value(ValueRef::Integer(7)), Ok(7));
        assert!(u32::from_value(ValueRef::Integer(-1)).is_err());
        assert!(u8::from_value(ValueRef::Integer(256)).is_err());
        assert!(i64::from_value(ValueRef::Text("1")).is_err());
        assert_eq!(u64::MAX.value_ref(), ValueRef::Integer(i64::MAX));
    }

    #[test]
    fn null_reads_as_none_and_only_as_none() {
        assert_eq!(Option::<String>::from_value(ValueRef::Null), Ok(None));
        assert!(String::from_value(ValueRef::Null).is_err());
        assert_eq!(Option::<i64>::from_value(ValueRef::Integer(3)), Ok(Some(3)));
    }

    #[test]
    fn booleans_are_stored_as_integers() {
        assert_eq!(true.value_ref(), ValueRef::Integer(1));
        assert_eq!(bool::from_value(ValueRef::Integer(0)), Ok(false));
        assert_eq!(bool::from_value(ValueRef::Integer(2)), Ok(true));
    }
}
