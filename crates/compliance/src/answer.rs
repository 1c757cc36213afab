//! Answers, who gave them, scores and what to do next. An item's answer is a person's
//! declaration if there is one, otherwise what mamori observed, otherwise 未回答; a
//! declaration that contradicts an observation must say why (a note).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, Item};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Yes,
    No,
    #[serde(rename = "na")]
    NotApplicable,
    Unanswered,
}

impl Answer {
    pub const ALL: [Answer; 4] = [
        Answer::Yes,
        Answer::No,
        Answer::NotApplicable,
        Answer::Unanswered,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::NotApplicable => "na",
            Answer::Unanswered => "unanswered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == s)
    }

    pub fn ja(self) -> &'static str {
        match self {
            Answer::Yes => "はい",
            Answer::No => "いいえ",
            Answer::NotApplicable => "該当なし",
            Answer::Unanswered => "未回答",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Answer::Yes => "Yes",
            Answer::No => "No",
            Answer::NotApplicable => "Not applicable",
            Answer::Unanswered => "Not answered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// mamori saw it in its own state (settings, accounts, ledger, backups, asset ledger).
    Observed,
    /// A person answered, with their name and the time.
    Declared,
    /// mamori saw part of what the item asks, and it was in order; the rest (named in the
    /// observation) needs a person's answer. Never counts as はい by itself.
    PartlyObserved,
    /// Nobody has answered and mamori cannot tell.
    None,
}

/// What mamori saw for one item, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub answer: Answer,
    pub evidence_ja: String,
    pub evidence_en: String,
    pub observed_at: i64,
    /// What the item asks that mamori cannot see. A partial check can find a fault (いいえ)
    /// but never prove the whole item (はい).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_ja: Option<String>,
}

impl Observation {
    pub fn new(yes: bool, ja: impl Into<String>, en: impl Into<String>, at: i64) -> Self {
        Self {
            answer: if yes { Answer::Yes } else { Answer::No },
            evidence_ja: ja.into(),
            evidence_en: en.into(),
            observed_at: at,
            unseen_ja: None,
        }
    }

    /// Marks what the item asks beyond what was observed (kept with what was already unseen).
    pub fn partly(mut self, unseen_ja: impl Into<String>) -> Self {
        let u = unseen_ja.into();
        self.unseen_ja = Some(match self.unseen_ja.take() {
            Some(before) => format!("{before}。{u}"),
            None => u,
        });
        self
    }

    /// Everything it asks was in order as far as mamori looked, but mamori did not see all.
    pub fn is_partial_yes(&self) -> bool {
        self.answer == Answer::Yes && self.unseen_ja.is_some()
    }
}

/// A person's answer to one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    pub answer: Answer,
    pub owner: String,
    /// Target date (YYYY-MM-DD) for an いいえ.
    pub due: Option<String>,
    pub note: String,
    pub by: String,
    pub at: i64,
}

/// Why a declaration was refused: the form field and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub message: &'static str,
}

fn is_date(s: &str) -> bool {
    mamori_domain::date::valid(s)
}

/// The rules a declaration must meet: an いいえ has a target date (the checklist asks for
/// one), and overriding what mamori observed needs a note saying why.
pub fn check_declaration(
    answer: Answer,
    due: Option<&str>,
    note: &str,
    observed: Option<&Observation>,
) -> Result<(), Refusal> {
    if let Some(d) = due
        && !is_date(d)
    {
        return Err(Refusal {
            field: "due",
            message: "目標日は YYYY-MM-DD の形で入力してください",
        });
    }
    if answer == Answer::No && due.is_none() {
        return Err(Refusal {
            field: "due",
            message: "「いいえ」には対策の目標日を入力してください",
        });
    }
    if let Some(o) = observed
        && !o.is_partial_yes()
        && o.answer != answer
        && answer != Answer::Unanswered
        && note.trim().is_empty()
    {
        return Err(Refusal {
            field: "note",
            message: "システムが観測した回答と違う回答にするには、理由をメモに書いてください",
        });
    }
    if note.chars().count() > 2000 {
        return Err(Refusal {
            field: "note",
            message: "メモは2000文字以内にしてください",
        });
    }
    Ok(())
}

/// One item's answer as it stands.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub item_id: String,
    pub answer: Answer,
    pub source: Source,
    pub observation: Option<Observation>,
    pub declared: Option<Declared>,
    /// A person's answer differs from what mamori observes now.
    pub overrides_observation: bool,
}

pub fn resolve(
    item_id: &str,
    observation: Option<Observation>,
    declared: Option<Declared>,
) -> Resolved {
    let declared = declared.filter(|d| d.answer != Answer::Unanswered || !d.note.is_empty());
    let (answer, source) = match (&declared, &observation) {
        (Some(d), _) if d.answer != Answer::Unanswered => (d.answer, Source::Declared),
        (_, Some(o)) if o.is_partial_yes() => (Answer::Unanswered, Source::PartlyObserved),
        (_, Some(o)) => (o.answer, Source::Observed),
        _ => (Answer::Unanswered, Source::None),
    };
    let overrides_observation = matches!((&declared, &observation),
        (Some(d), Some(o)) if d.answer != Answer::Unanswered && !o.is_partial_yes() && d.answer != o.answer);
    Resolved {
        item_id: item_id.to_owned(),
        answer,
        source,
        observation,
        declared,
        overrides_observation,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub yes: usize,
    pub no: usize,
    pub not_applicable: usize,
    pub unanswered: usize,
}

impl Tally {
    fn add(&mut self, a: Answer) {
        match a {
            Answer::Yes => self.yes += 1,
            Answer::No => self.no += 1,
            Answer::NotApplicable => self.not_applicable += 1,
            Answer::Unanswered => self.unanswered += 1,
        }
    }

    /// Items that apply (everything but 該当なし).
    pub fn applicable(&self) -> usize {
        self.yes + self.no + self.unanswered
    }

    /// Share of applicable items answered はい, in whole percent (100 when nothing applies).
    pub fn percent(&self) -> u32 {
        match self.applicable() {
            0 => 100,
            n => ((self.yes * 100 + n / 2) / n) as u32,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionScore {
    pub section: String,
    pub title: String,
    pub tally: Tally,
    pub percent: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub sections: Vec<SectionScore>,
    pub overall: Tally,
    pub percent: u32,
}

/// Scores per section (in catalogue order) and overall. 未回答 counts against the score: an
/// inspector reads an empty box as not done.
pub fn score(c: &Catalogue, answers: &HashMap<String, Resolved>) -> Score {
    let mut overall = Tally::default();
    let sections = c
        .sections
        .iter()
        .map(|s| {
            let mut t = Tally::default();
            for i in c.items.iter().filter(|i| i.section == s.id) {
                let a = answers.get(&i.id).map_or(Answer::Unanswered, |r| r.answer);
                t.add(a);
                overall.add(a);
            }
            SectionScore {
                section: s.id.clone(),
                title: s.title.clone(),
                percent: t.percent(),
                tally: t,
            }
        })
        .collect();
    Score {
        sections,
        percent: overall.percent(),
        overall,
    }
}

/// The fiscal year (April–March) a date falls in: 2026-03-31 is FY2025, 2026-04-01 FY2026.
pub fn fiscal_year(date: &str) -> Option<i32> {
    if !is_date(date) {
        return None;
    }
    let y: i32 = date[..4].parse().ok()?;
    let m: u32 = date[5..7].parse().ok()?;
    Some(if m < 4 { y - 1 } else { y })
}

/// 令和 for a fiscal year (令和元年度 = 2019).
pub fn reiwa(fy: i32) -> String {
    match fy - 2018 {
        1 => "令和元年度".into(),
        n if n > 1 => format!("令和{n}年度"),
        _ => format!("{fy}年度"),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NextStep {
    pub item_id: String,
    pub number: String,
    pub text: String,
    pub answer: Answer,
    /// The item must be はい by the assessment's fiscal year.
    pub required_now: bool,
    pub required_by: i32,
    pub due: Option<String>,
}

/// What to do next, most important first: items required by this fiscal year before later
/// ones, then いいえ before 未回答, then the nearest target date, then catalogue order.
pub fn next_steps(c: &Catalogue, answers: &HashMap<String, Resolved>, fy: i32) -> Vec<NextStep> {
    let mut v: Vec<(usize, NextStep)> = c
        .items
        .iter()
        .enumerate()
        .filter_map(|(pos, i)| {
            let r = answers.get(&i.id);
            let answer = r.map_or(Answer::Unanswered, |r| r.answer);
            matches!(answer, Answer::No | Answer::Unanswered).then(|| {
                (
                    pos,
                    NextStep {
                        item_id: i.id.clone(),
                        number: i.number.clone(),
                        text: i.text.clone(),
                        answer,
                        required_now: i.required_by <= fy,
                        required_by: i.required_by,
                        due: r
                            .and_then(|r| r.declared.as_ref())
                            .and_then(|d| d.due.clone()),
                    },
                )
            })
        })
        .collect();
    v.sort_by(|(pa, a), (pb, b)| {
        b.required_now
            .cmp(&a.required_now)
            .then_with(|| (a.answer != Answer::No).cmp(&(b.answer != Answer::No)))
            .then_with(|| match (&a.due, &b.due) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| pa.cmp(pb))
    });
    v.into_iter().map(|(_, s)| s).collect()
}

/// Last time's answer for an item, matched by topic (editions renumber and merge items: two
/// R6 items on one topic become one R7 item, answered はい only if both were).
pub fn previous_answer(
    item: &Item,
    prev: &Catalogue,
    prev_answers: &HashMap<String, Answer>,
) -> Option<Answer> {
    let topic: Vec<&Item> = prev
        .items
        .iter()
        .filter(|p| p.topic == item.topic)
        .collect();
    let exact: Vec<&Item> = topic
        .iter()
        .copied()
        .filter(|p| p.scope == item.scope)
        .collect();
    let same: Vec<Answer> = if exact.is_empty() { topic } else { exact }
        .into_iter()
        .map(|p| {
            prev_answers
                .get(&p.id)
                .copied()
                .unwrap_or(Answer::Unanswered)
        })
        .collect();
    if same.is_empty() {
        None
    } else if same.contains(&Answer::No) {
        Some(Answer::No)
    } else if same.contains(&Answer::Unanswered) {
        Some(Answer::Unanswered)
    } else if same.iter().all(|a| *a == Answer::NotApplicable) {
        Some(Answer::NotApplicable)
    } else {
        Some(Answer::Yes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Library;

    fn obs(yes: bool) -> Observation {
        Observation::new(yes, "見た", "seen", 1)
    }

    fn decl(a: Answer, note: &str) -> Declared {
        Declared {
            answer: a,
            owner: String::new(),
            due: None,
            note: note.into(),
            by: "x".into(),
            at: 2,
        }
    }

    #[test]
    fn a_declaration_wins_over_an_observation_and_is_marked_as_an_override() {
        let r = resolve("A", Some(obs(true)), None);
        assert_eq!((r.answer, r.source), (Answer::Yes, Source::Observed));
        let r = resolve("A", Some(obs(true)), Some(decl(Answer::No, "理由")));
        assert_eq!((r.answer, r.source), (Answer::No, Source::Declared));
        assert!(r.overrides_observation);
        let r = resolve("A", None, None);
        assert_eq!((r.answer, r.source), (Answer::Unanswered, Source::None));
        // Withdrawing an answer (未回答) falls back to the observation.
        let r = resolve(
            "A",
            Some(obs(false)),
            Some(decl(Answer::Unanswered, "後で")),
        );
        assert_eq!((r.answer, r.source), (Answer::No, Source::Observed));
    }

    #[test]
    fn a_partial_check_can_say_no_but_never_yes() {
        let partial = |yes| obs(yes).partly("手順書があるか");
        let r = resolve("A", Some(partial(true)), None);
        assert_eq!(
            (r.answer, r.source),
            (Answer::Unanswered, Source::PartlyObserved)
        );
        let r = resolve("A", Some(partial(false)), None);
        assert_eq!((r.answer, r.source), (Answer::No, Source::Observed));
        // The officer answers for the whole item; no override note is needed either way.
        assert!(check_declaration(Answer::Yes, None, "", Some(&partial(true))).is_ok());
        assert!(
            check_declaration(Answer::No, Some("2027-03-31"), "", Some(&partial(true))).is_ok()
        );
        let r = resolve("A", Some(partial(true)), Some(decl(Answer::Yes, "")));
        assert_eq!((r.answer, r.source), (Answer::Yes, Source::Declared));
        assert!(!r.overrides_observation);
        // A fault mamori saw still needs a reason to be answered はい.
        assert!(check_declaration(Answer::Yes, None, "", Some(&partial(false))).is_err());
    }

    #[test]
    fn declarations_follow_the_checklist_rules() {
        assert_eq!(
            check_declaration(Answer::No, None, "", None)
                .unwrap_err()
                .field,
            "due"
        );
        assert!(check_declaration(Answer::No, Some("2027-03-31"), "", None).is_ok());
        assert_eq!(
            check_declaration(Answer::No, Some("2027-02-30x"), "", None)
                .unwrap_err()
                .field,
            "due"
        );
        assert_eq!(
            check_declaration(Answer::Yes, None, " ", Some(&obs(false)))
                .unwrap_err()
                .field,
            "note"
        );
        assert!(check_declaration(Answer::Yes, None, "紙台帳で管理", Some(&obs(false))).is_ok());
        assert!(check_declaration(Answer::Yes, None, "", Some(&obs(true))).is_ok());
    }

    #[test]
    fn scores_count_unanswered_against_and_not_applicable_out() {
        let lib = Library::embedded();
        let c = lib.get("mhlw-checklist-medical-r6").unwrap();
        let mut m = HashMap::new();
        m.insert(
            "R6-M-1-01".into(),
            resolve("R6-M-1-01", Some(obs(true)), None),
        );
        m.insert(
            "R6-M-3-01".into(),
            resolve("R6-M-3-01", None, Some(decl(Answer::No, ""))),
        );
        m.insert(
            "R6-M-3-02".into(),
            resolve("R6-M-3-02", None, Some(decl(Answer::NotApplicable, ""))),
        );
        let s = score(c, &m);
        assert_eq!(s.sections[0].percent, 100);
        assert_eq!(
            s.sections[2].tally,
            Tally {
                yes: 0,
                no: 1,
                not_applicable: 1,
                unanswered: 1
            }
        );
        assert_eq!(s.sections[2].percent, 0);
        assert_eq!(s.overall.applicable(), 17);
        assert_eq!(s.percent, 6); // 1 of 17
    }

    #[test]
    fn next_steps_put_this_years_requirements_first() {
        let lib = Library::embedded();
        let c = lib.get("mhlw-checklist-medical-r7").unwrap();
        let mut m = HashMap::new();
        for i in &c.items {
            m.insert(i.id.clone(), resolve(&i.id, Some(obs(true)), None));
        }
        // Two-factor is required only by FY2027; backups now; one いいえ with a date.
        m.insert(
            "R7-M-2-10".into(),
            resolve("R7-M-2-10", Some(obs(false)), None),
        );
        m.insert("R7-M-3-02".into(), resolve("R7-M-3-02", None, None));
        let mut d = decl(Answer::No, "");
        d.due = Some("2026-12-01".into());
        m.insert("R7-M-2-09".into(), resolve("R7-M-2-09", None, Some(d)));
        let steps = next_steps(c, &m, 2026);
        let ids: Vec<&str> = steps.iter().map(|s| s.item_id.as_str()).collect();
        assert_eq!(ids, ["R7-M-2-09", "R7-M-3-02", "R7-M-2-10"]);
        assert!(!steps[2].required_now);
        // In FY2027 two-factor is required, and as an いいえ it comes before the 未回答.
        let ids: Vec<String> = next_steps(c, &m, 2027)
            .into_iter()
            .map(|s| s.item_id)
            .collect();
        assert_eq!(ids, ["R7-M-2-09", "R7-M-2-10", "R7-M-3-02"]);
    }

    #[test]
    fn fiscal_years_start_in_april() {
        assert_eq!(fiscal_year("2026-03-31"), Some(2025));
        assert_eq!(fiscal_year("2026-04-01"), Some(2026));
        assert_eq!(fiscal_year("2026-13-01"), None);
        assert_eq!(reiwa(2025), "令和7年度");
        assert_eq!(reiwa(2019), "令和元年度");
    }

    #[test]
    fn last_years_answers_are_matched_by_topic_across_editions() {
        let lib = Library::embedded();
        let r6 = lib.get("mhlw-checklist-medical-r6").unwrap();
        let r7 = lib.get("mhlw-checklist-medical-r7").unwrap();
        let mut prev = HashMap::new();
        prev.insert("R6-M-2-04".to_string(), Answer::Yes); // server access rights
        prev.insert("R6-M-2-09".to_string(), Answer::No); // PC access rights
        prev.insert("R6-M-1-01".to_string(), Answer::Yes);
        let item = |id| r7.item(id).unwrap();
        assert_eq!(
            previous_answer(item("R7-M-2-04"), r6, &prev),
            Some(Answer::No)
        );
        assert_eq!(
            previous_answer(item("R7-M-1-01"), r6, &prev),
            Some(Answer::Yes)
        );
        assert_eq!(previous_answer(item("R7-M-2-09"), r6, &prev), None); // new in R7
    }
}
