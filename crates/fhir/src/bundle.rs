//! Search results as a `searchset` Bundle, paged with `link next`.

use serde_json::{Value, json};

/// A page of search results: `self_url` is the request as answered, `next_url` the next page
/// when there is one; each entry is (full URL, resource).
pub fn searchset(
    entries: Vec<(String, Value)>,
    total: Option<usize>,
    self_url: &str,
    next_url: Option<&str>,
) -> Value {
    let mut links = vec![json!({ "relation": "self", "url": self_url })];
    if let Some(n) = next_url {
        links.push(json!({ "relation": "next", "url": n }));
    }
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries
            .into_iter()
            .map(|(full_url, resource)| json!({
                "fullUrl": full_url,
                "resource": resource,
                "search": { "mode": "match" },
            }))
            .collect::<Vec<_>>(),
    });
    if let Some(t) = total {
        b["total"] = json!(t);
    }
    b
}

/// Every version of one resource, newest first (a `history` Bundle): each entry (full URL of
/// the version, resource, whether it was the resource's creation).
pub fn history(entries: Vec<(String, Value, bool)>, self_url: &str) -> Value {
    let total = entries.len();
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": [{ "relation": "self", "url": self_url }],
        "entry": entries
            .into_iter()
            .map(|(full_url, resource, created)| {
                let url = format!(
                    "{}/{}",
                    resource["resourceType"].as_str().unwrap_or_default(),
                    resource["id"].as_str().unwrap_or_default()
                );
                json!({
                    "fullUrl": full_url,
                    "resource": resource,
                    "request": { "method": if created { "POST" } else { "PUT" }, "url": url },
                    "response": { "status": if created { "201" } else { "200" } },
                })
            })
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_links_itself_and_the_next() {
        let b = searchset(
            vec![(
                "http://x/fhir/r4/Patient/P1".into(),
                json!({"resourceType": "Patient", "id": "P1"}),
            )],
            None,
            "http://x/fhir/r4/Patient?name=ヤマダ",
            Some("http://x/fhir/r4/Patient?name=ヤマダ&_offset=1"),
        );
        assert_eq!(b["type"], "searchset");
        assert_eq!(b["link"][1]["relation"], "next");
        assert_eq!(b["entry"][0]["search"]["mode"], "match");
        assert!(b.get("total").is_none());
    }
}
