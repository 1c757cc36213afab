//! The risk register: what could go wrong, how likely and how bad, what controls it (and which
//! mamori feature implements the control), and what risk is left.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// The asset or information at risk.
    pub asset: String,
    pub threat: String,
    /// 1 (rare) – 5 (almost certain).
    pub likelihood: u8,
    /// 1 (negligible) – 5 (care stops / mass disclosure).
    pub impact: u8,
    pub control: String,
    /// The mamori feature(s) that implement the control, if any.
    pub feature: String,
    /// 1 – 5 after the control.
    pub residual: u8,
    pub owner: String,
}

impl Risk {
    pub fn inherent(&self) -> u8 {
        self.likelihood * self.impact
    }

    pub fn level_ja(score: u8) -> &'static str {
        match score {
            0..=4 => "低",
            5..=11 => "中",
            _ => "高",
        }
    }

    pub fn checked(mut self) -> Result<Self, (&'static str, &'static str)> {
        for (field, v) in [
            ("asset", &mut self.asset),
            ("threat", &mut self.threat),
            ("control", &mut self.control),
            ("feature", &mut self.feature),
            ("owner", &mut self.owner),
        ] {
            *v = v.trim().to_owned();
            if v.chars().count() > 2000 {
                return Err((field, "2000文字以内にしてください"));
            }
        }
        if self.asset.is_empty() || self.threat.is_empty() {
            return Err(("threat", "対象と脅威は必須です"));
        }
        for (field, v) in [
            ("likelihood", self.likelihood),
            ("impact", self.impact),
            ("residual", self.residual),
        ] {
            if !(1..=5).contains(&v) {
                return Err((field, "1から5の数にしてください"));
            }
        }
        Ok(self)
    }
}

fn r(
    asset: &str,
    threat: &str,
    l: u8,
    i: u8,
    control: &str,
    feature: &str,
    residual: u8,
) -> (String, Risk) {
    (
        threat.split('（').next().unwrap_or(threat).to_owned(),
        Risk {
            asset: asset.into(),
            threat: threat.into(),
            likelihood: l,
            impact: i,
            control: control.into(),
            feature: feature.into(),
            residual,
            owner: String::new(),
        },
    )
}

/// The common threats to a Japanese medical institution (seed 000's incident list and the
/// MHLW notices), each with a stable key so that seeding twice adds nothing.
pub fn seeds() -> Vec<(String, Risk)> {
    vec![
        r(
            "電子カルテ・診療録データ",
            "VPN装置の脆弱性を突いたランサムウェア（保守回線から侵入し、サーバとバックアップを暗号化）",
            4,
            5,
            "VPN装置のパッチ適用と接続元制限、端末の証明書認証、世代管理したバックアップのオフライン・書換え不可保管と復元訓練",
            "クライアント証明書（mTLS）、バックアップ（世代・オフライン・オブジェクトロック）、復元訓練、機器台帳のパッチ日",
            2,
        ),
        r(
            "診療録（閲覧）",
            "職員による業務外の閲覧（興味本位・知人のカルテ）",
            3,
            4,
            "職種別のアクセス権限、全閲覧の記録と定期的なレビュー、非常時アクセスの事後確認",
            "職種別権限、改ざん検知台帳、監査画面（患者別・職員別）、ブレークグラスのレビュー",
            2,
        ),
        r(
            "ノートPC・持ち出し端末",
            "患者情報の入ったノートPCの紛失・盗難",
            3,
            4,
            "端末にデータを残さない運用、ディスク暗号化、紛失時の証明書失効",
            "端末証明書の失効（CRL・OCSP・即時拒否）",
            2,
        ),
        r(
            "院内ネットワーク・医療機器",
            "ウイルスに感染した私物PC（BYOD）の院内ネットワーク接続",
            3,
            4,
            "登録機器以外の接続を認めない、USB等の外部媒体の制限",
            "クライアント証明書（登録端末のみ接続）、機器台帳",
            2,
        ),
        r(
            "クラウドサービスのアカウント",
            "フィッシングによるID・パスワードの漏洩（規程違反の私的クラウド保存を含む）",
            3,
            3,
            "二要素認証、私的クラウドへの保存禁止を運用管理規程に明記、教育",
            "TOTP二要素認証（職種ごとの必須設定）、運用管理規程の草案",
            2,
        ),
        r(
            "診療録・患者名簿",
            "退職者による持ち出し（退職後もアカウントが有効）",
            2,
            4,
            "退職時のアカウント無効化と証明書失効、未使用アカウントの定期点検",
            "アカウント点検（未使用・期限切れ）、証明書の失効、アカウント無効化",
            1,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_valid_and_keyed_uniquely() {
        let s = seeds();
        assert_eq!(s.len(), 6);
        let keys: std::collections::HashSet<_> = s.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys.len(), 6);
        for (_, r) in s {
            assert!(r.residual < r.likelihood * r.impact);
            r.checked().unwrap();
        }
    }

    #[test]
    fn scores_out_of_range_are_refused() {
        let mut r = seeds().remove(0).1;
        r.impact = 6;
        assert_eq!(r.checked().unwrap_err().0, "impact");
        assert_eq!(Risk::level_ja(20), "高");
    }
}
