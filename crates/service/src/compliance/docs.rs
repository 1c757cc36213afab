//! The documents mamori fills in from its own data: the self-assessment report for
//! inspections, the incident contact chart, and drafts of the 運用管理規程 and of the backup
//! policy / BCP that state mamori's actual settings. Each is a [`Doc`], printed as HTML or PDF.

use std::sync::Arc;

use mamori_compliance::Source;
use mamori_compliance::answer::reiwa;
use mamori_compliance::doc::Doc;
use mamori_domain::audit::actions;

use crate::compliance::facility::CONTACT_CATEGORIES;
use crate::compliance::observe::{Profile, profile_in};
use crate::compliance::{AssessmentView, may_assess};
use crate::error::{Result, ServiceError};
use crate::ledger::audit::jst;
use crate::{Principal, Service};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    ContactChart,
    OperatingRules,
    BackupBcp,
}

impl DocKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contacts" => Some(Self::ContactChart),
            "rules" => Some(Self::OperatingRules),
            "bcp" => Some(Self::BackupBcp),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::ContactChart => "contacts",
            Self::OperatingRules => "rules",
            Self::BackupBcp => "bcp",
        }
    }
}

fn or_blank(s: &str) -> String {
    if s.trim().is_empty() {
        "（未記入）".into()
    } else {
        s.to_owned()
    }
}

/// The report an inspector reads: every item with its answer, whether mamori observed it or
/// a person declared it, the evidence, and what is planned for the いいえ.
pub fn assessment_doc(v: &AssessmentView, facility: &str, profile: &Profile, now: i64) -> Doc {
    let mut d = Doc::new(format!("{}　自己点検結果", v.catalogue.title));
    d.subtitle = vec![
        format!("施設: {facility}"),
        format!(
            "版: {}　点検日: {}（{}）　状態: {}",
            v.catalogue.edition,
            v.assessment.assessed_on,
            reiwa(v.fiscal_year),
            if v.closed {
                "締め済み"
            } else {
                "点検中"
            }
        ),
        format!(
            "医療情報システム安全管理責任者: {}　作成: {}",
            or_blank(&profile.security_officer),
            jst(now)
        ),
    ];
    d.footer = format!("mamori 自己点検結果 — {facility}");
    let o = &v.score.overall;
    d.heading("概要");
    let mut f = vec![(
        "総合".to_owned(),
        format!(
            "{}%（はい {}／いいえ {}／該当なし {}／未回答 {}）",
            v.score.percent, o.yes, o.no, o.not_applicable, o.unanswered
        ),
    )];
    for s in &v.score.sections {
        f.push((
            format!("{} {}", s.section, s.title),
            format!(
                "{}%（はい {}／対象 {}）",
                s.percent,
                s.tally.yes,
                s.tally.applicable()
            ),
        ));
    }
    if let Some((prev, pct)) = &v.previous {
        f.push((
            "前回".to_owned(),
            format!("{}%（{} 点検）", pct, prev.assessed_on),
        ));
    }
    let observed = v
        .items
        .iter()
        .filter(|i| i.resolved.source == Source::Observed)
        .count();
    f.push((
        "回答の出所".to_owned(),
        format!(
            "システムの観測 {observed} 項目・担当者の申告 {} 項目（観測は {} 時点）",
            v.items
                .iter()
                .filter(|i| i.resolved.source == Source::Declared)
                .count(),
            jst(v.observed_at)
        ),
    ));
    d.fields(f);
    d.heading("回答");
    let rows = v
        .items
        .iter()
        .map(|i| {
            let r = &i.resolved;
            let mut basis = Vec::new();
            match r.source {
                Source::Observed => basis.push("［観測］".to_owned()),
                Source::Declared => basis.push("［申告］".to_owned()),
                Source::PartlyObserved => basis.push("［一部観測・要回答］".to_owned()),
                Source::None => {}
            }
            if let Some(o) = &r.observation {
                basis.push(format!(
                    "mamori の観測（{}）: {}",
                    jst(o.observed_at),
                    o.evidence_ja
                ));
                if let Some(u) = &o.unseen_ja {
                    basis.push(format!("mamori からは見えない部分: {u}"));
                }
            }
            if let Some(dcl) = &r.declared {
                basis.push(format!(
                    "{} が {} に回答{}",
                    or_blank(&dcl.by),
                    jst(dcl.at),
                    if r.overrides_observation {
                        "（観測と異なる）"
                    } else {
                        ""
                    }
                ));
                if !dcl.note.is_empty() {
                    basis.push(format!("メモ: {}", dcl.note));
                }
                if !dcl.owner.is_empty() {
                    basis.push(format!("担当: {}", dcl.owner));
                }
                if let Some(due) = &dcl.due {
                    basis.push(format!("目標日: {due}"));
                }
            }
            for e in &i.evidence {
                basis.push(format!(
                    "証跡: {}{}",
                    e.name,
                    e.url
                        .as_deref()
                        .map(|u| format!("（{u}）"))
                        .unwrap_or_default()
                ));
            }
            vec![
                i.item.number.clone(),
                format!(
                    "{}{}\n根拠: {}",
                    i.item.text,
                    i.item
                        .scope
                        .as_deref()
                        .map(|s| format!("（{s}）"))
                        .unwrap_or_default(),
                    i.item.refs.join("、")
                ),
                r.answer.ja().to_owned(),
                basis.join("\n"),
            ]
        })
        .collect();
    d.table(&["番号", "項目", "回答", "根拠・証跡"], &[2, 9, 2, 9], rows);
    if !v.next_steps.is_empty() {
        d.heading("次に行うこと（優先順）");
        d.list(
            v.next_steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {}（{}{}{}）",
                        s.number,
                        s.text,
                        s.answer.ja(),
                        if s.required_now {
                            "・今年度必須"
                        } else {
                            ""
                        },
                        s.due
                            .as_deref()
                            .map(|d| format!("・目標日 {d}"))
                            .unwrap_or_else(|| {
                                if s.required_now {
                                    String::new()
                                } else {
                                    format!("・{}までに", reiwa(s.required_by))
                                }
                            })
                    )
                })
                .collect(),
        );
    }
    if let Some(u) = &v.catalogue.uncertain {
        d.heading("この点検表について");
        d.para(format!(
            "項目文は mamori による要約です。正式な文言は厚生労働省の原本を確認してください。出典: {}。注記: {u}",
            v.catalogue.source
        ));
    }
    d
}

impl Service {
    /// The report of an assessment as a document (recorded as a report in the ledger).
    pub async fn assessment_doc(self: &Arc<Self>, p: Option<&Principal>, id: i64) -> Result<Doc> {
        let v = self.report_view(p, id).await?;
        let profile = self
            .store()
            .read(|r| Ok(profile_in(r).unwrap_or_default()))
            .await?;
        Ok(assessment_doc(&v, self.facility(), &profile, self.now()))
    }

    /// One of the facility documents, filled in from the live settings and registers.
    pub async fn facility_doc(self: &Arc<Self>, p: &Principal, kind: DocKind) -> Result<Doc> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_REPORT, move |this, r, t| {
            t.detail("document", kind.code());
            may_assess(&pc)?;
            let profile = profile_in(r)?;
            let now = this.now();
            let facility = this.facility().to_owned();
            let mut d = match kind {
                DocKind::ContactChart => {
                    let mut d = Doc::new("インシデント発生時の連絡体制図");
                    let contacts = r.contacts()?;
                    d.para("サイバー攻撃（ランサムウェア等）や情報漏えいの疑いがあるときは、発見した人が下の順に連絡します。慌てて機器の電源を切ったりデータを消したりせず、ネットワークから切り離して報告してください。");
                    for (code, ja, _) in CONTACT_CATEGORIES {
                        let rows: Vec<Vec<String>> = contacts
                            .iter()
                            .filter(|c| c.category == *code)
                            .map(|c| vec![c.name.clone(), c.organisation.clone(), c.phone.clone(), c.email.clone(), c.note.clone()])
                            .collect();
                        if rows.is_empty() && *code == "other" {
                            continue;
                        }
                        d.heading(*ja);
                        if rows.is_empty() {
                            d.para("（未登録です。自己点検 › 連絡体制図 で登録してください）");
                        } else {
                            d.table(&["氏名・役割", "所属", "電話", "メール", "備考"], &[4, 4, 3, 4, 4], rows);
                        }
                    }
                    d
                }
                DocKind::OperatingRules => this.rules_doc(r, &profile)?,
                DocKind::BackupBcp => this.bcp_doc(r, &profile)?,
            };
            d.subtitle.insert(0, format!("施設: {facility}"));
            d.subtitle.push(format!(
                "医療情報システム安全管理責任者: {}　作成: {}（mamori の設定から作成）",
                or_blank(&profile.security_officer),
                jst(now)
            ));
            d.footer = format!("{} — {facility}", d.title);
            Ok(d)
        })
        .await
    }

    fn rules_doc(&self, r: &mamori_store::Reader<'_>, profile: &Profile) -> Result<Doc> {
        let cfg = &self.config;
        let mut d = Doc::new("医療情報システム運用管理規程（草案）");
        d.para("この草案は mamori の現在の設定を書き写したものです。院内で読み合わせ、施設の実情に合わせて直したうえで制定し、制定日を 自己点検 › 体制 に記録してください。");
        d.heading("第1条 目的");
        d.para("本規程は、診療録等を電子的に保存する医療情報システム（以下「システム」）を安全に運用し、真正性・見読性・保存性を確保するために必要な事項を定める。");
        d.heading("第2条 管理体制");
        d.fields(vec![
            ("管理者（院長）".into(), or_blank(&profile.director)),
            (
                "医療情報システム安全管理責任者".into(),
                or_blank(&profile.security_officer),
            ),
        ]);
        d.para("安全管理責任者は、利用者の登録と権限の管理、アクセスの記録の確認、バックアップと復元の確認、年1回の自己点検を行う。");
        d.heading("第3条 利用者の識別と認証");
        let two: Vec<String> = {
            let codes = r.two_factor_roles()?;
            r.roles()?
                .into_iter()
                .filter(|x| codes.contains(&x.code))
                .map(|x| x.name_ja)
                .collect()
        };
        d.list(vec![
            "利用者ごとに個人のアカウントを発行し、共用しない。".into(),
            format!(
                "パスワードは {} 文字以上とし、直近 {} 個と同じものは使えない。有効期限は {}。",
                cfg.password.min_length,
                cfg.password.history,
                cfg.password.max_age_days.map_or("設けない（二要素認証または長いパスワードで代える）".into(), |d| format!("{d} 日"))
            ),
            format!(
                "ログインに {} 回続けて失敗したアカウントは {} 分間ロックする。",
                cfg.lockout.max_failures, cfg.lockout.lock_minutes
            ),
            format!(
                "二要素認証（TOTP）を必須とする職種: {}。",
                if two.is_empty() { "なし（令和9年度までに導入する）".into() } else { two.join("、") }
            ),
            format!(
                "操作がないまま {} 分で画面をロックし、{} 分でログアウトする。離席時は画面をロックする。",
                cfg.session.lock_minutes, cfg.session.idle_minutes
            ),
        ]);
        d.heading("第4条 アクセス権限");
        d.para(
            "職種ごとに次の権限を与える。権限の変更は安全管理責任者が行い、その記録は台帳に残る。",
        );
        let rows = r
            .roles()?
            .into_iter()
            .map(|x| {
                vec![
                    x.name_ja.clone(),
                    x.grants
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        d.table(&["職種", "権限"], &[3, 9], rows);
        d.heading("第5条 真正性の確保");
        d.list(vec![
            "記録は作成者が「確定」して初めて正式な記録となる。確定後の修正は新しい版として残り、元の版は消えない。".into(),
            "代行入力は、責任者（医師等）の承認をもって確定する。".into(),
            format!(
                "確定した版には電子署名とタイムスタンプを付ける（現在の設定: {}）。",
                if cfg.evidence.sign { "有効" } else { "無効" }
            ),
            "すべての閲覧・作成・変更は改ざん検知台帳に記録し、定期的に全件検証する。".into(),
        ]);
        d.heading("第6条 見読性・保存性の確保");
        let kinds = r
            .kinds()?
            .into_iter()
            .map(|k| vec![k.name_ja, format!("{} 年", k.retention_years)])
            .collect();
        d.table(&["記録の種別", "保存期間"], &[6, 3], kinds);
        d.para("保存期間は延ばすことはできても短くすることはできない。バックアップは別紙「バックアップ方針・BCP」による。");
        d.heading("第7条 非常時のアクセス");
        d.para(format!(
            "緊急に担当外の患者の記録を見る必要があるときは、理由を入力して非常時アクセスを使う。有効時間は {} 分で、使用は直ちに安全管理責任者に通知され、事後に確認を受ける。",
            cfg.emergency.minutes
        ));
        d.heading("第8条 保守作業");
        d.para("保守事業者の作業は、事前に作業申請（作業者・日時・目的・個人情報に触れるか）を受けて管理者が承認し、承認した時間内だけログインを認める。作業後は作業報告を確認する。");
        d.heading("第9条 記録の確認と点検");
        d.para(format!(
            "安全管理責任者は少なくとも月1回アクセスの記録を確認し、年1回サイバーセキュリティ対策チェックリストで自己点検する。時刻は {} に同期させる。",
            if cfg.time.ntp_servers.trim().is_empty() { "（NTP サーバを設定してください）".to_owned() } else { cfg.time.ntp_servers.clone() }
        ));
        // JAHIS 09-001 §6.3, §6.5 and the guideline's training and outsourcing requirements.
        d.heading("第10条 情報の破棄");
        d.list(vec![
            "診療録等は保存期間中は消去しない（mamori は記録を削除できない）。".to_owned(),
            "情報を記録した媒体・機器（ディスク、USB メモリ、バックアップ媒体、PC）を廃棄・返却・修理に出すときは、安全管理責任者の承認を得て、読み出せないように消去または物理的に破壊し、何を・いつ・誰が・どの方法で破棄し、誰が確認したかを mamori の破棄台帳に記録する。mamori が書いたバックアップ先はバックアップ画面の「消去」で消し、消去記録は自動で破棄台帳に残る。".to_owned(),
            "破棄を外部事業者に委託したときは、破棄の証明書を受け取り、記録とともに保管する。".to_owned(),
            format!(
                "古いバックアップの世代は {} 世代を超えたものを削除する。削除の計画と結果は台帳に記録される。",
                cfg.backup.keep
            ),
        ]);
        d.heading("第11条 情報・機器の持ち出し");
        d.list(vec![
            "患者の情報を施設の外に持ち出すのは、業務に必要で安全管理責任者が認めた場合に限る。印刷と書き出し（証拠一式を含む）は誰が・いつ・どの患者のものかが台帳に記録される。".to_owned(),
            "持ち出しは mamori の持ち出し台帳に記録し（目的・持ち出し先・承認者、返却・消去した日）、登録していない媒体での持ち出しを禁じる。媒体は暗号化し、パスワードは媒体と別の方法で伝える。記録を渡すときは「暗号化して出力」を使う（持ち出し台帳に自動で記録される）。".to_owned(),
            "持ち出した媒体・機器を紛失・盗難したときは、直ちに安全管理責任者に報告し、連絡体制図に従って対応する。".to_owned(),
            "施設外で使う機器にはログイン時の二要素認証と起動時のパスワードを設定し、画面の覗き見を防ぐ。".to_owned(),
        ]);
        d.heading("第12条 教育と訓練");
        d.para("安全管理責任者は、全職員に対して年1回以上、この規程、パスワードの扱い、不審なメールへの対応、インシデント時の連絡について教育を行い、出席者と資料を mamori の「教育・訓練」に記録する。新たに着任した職員には利用開始前に行う。バックアップからの復元訓練は定期的に行い、結果を記録する。");
        d.heading("第13条 業務の委託と外部保存");
        let external: Vec<String> = cfg
            .backup
            .target_list()
            .into_iter()
            .filter(|t| t.starts_with("s3://"))
            .map(|t| crate::backup::target_label(&t))
            .collect();
        d.para(format!(
            "保守・保存・破棄を外部に委託するときは、守秘義務と安全管理の責任分担（医療機関と事業者それぞれが負う責任）を契約で定め、事業者から医療情報セキュリティ開示書（MDS/SDS）を受け取る。施設の外に保存する場合は、保存場所が日本の法令の及ぶ範囲にあること、契約の準拠法と管轄を確かめ、mamori の「外部保存・委託」に記録する。現在の外部保存先: {}。",
            if external.is_empty() { "なし".to_owned() } else { external.join("、") }
        ));
        d.heading("第14条 見直し");
        d.para("この規程は年1回以上、および重大なインシデントや制度の改正があったときに見直し、見直した日を記録する。");
        Ok(d)
    }

    fn bcp_doc(&self, r: &mamori_store::Reader<'_>, profile: &Profile) -> Result<Doc> {
        let cfg = &self.config.backup;
        let b = self.backup_status_in(r)?;
        let mut d = Doc::new("バックアップ方針・事業継続計画（BCP）草案");
        d.para("この草案は mamori のバックアップ設定と実績を書き写したものです。院内で検討し、紙運用の手順や連絡先を加えて制定してください。");
        d.heading("1. バックアップの方針");
        let targets = cfg.target_list();
        d.fields(vec![
            (
                "保存先".into(),
                if targets.is_empty() {
                    "（未設定。mamori.toml の [backup] targets に NAS・外付け媒体・書換え不可のオブジェクトストレージを設定してください）".into()
                } else {
                    targets.iter().map(|t| crate::backup::target_label(t)).collect::<Vec<_>>().join("、")
                },
            ),
            ("頻度".into(), if cfg.interval_hours == 0 { "手動のみ".into() } else { format!("{} 時間ごと", cfg.interval_hours) }),
            ("世代".into(), format!("{} 世代を保持（ランサムウェアに暗号化された世代を避けて戻せるように）", cfg.keep)),
            ("オフライン保管".into(), format!("{} 日ごとにネットワークから切り離した媒体へ複製し、記録する", cfg.offline_days)),
            ("復元訓練".into(), format!("{} 日ごとに別の場所へ復元し、台帳と署名の検証まで行う", cfg.drill_days)),
            ("暗号化".into(), "バックアップは暗号化し、鍵は印刷して金庫など別の場所に保管する".into()),
        ]);
        d.heading("2. 現在の状況");
        let mut f: Vec<(String, String)> = b
            .targets
            .iter()
            .map(|t| {
                (
                    t.target.clone(),
                    format!(
                        "最後の成功 {}{}",
                        t.last_ok_at.map(jst).unwrap_or_else(|| "なし".into()),
                        if t.failing() {
                            "（直近は失敗）"
                        } else {
                            ""
                        }
                    ),
                )
            })
            .collect();
        f.push((
            "最後の復元訓練".into(),
            b.last_drill.as_ref().map_or("なし".into(), |x| {
                format!("{}（{}）", jst(x.at), if x.ok { "成功" } else { "失敗" })
            }),
        ));
        f.push((
            "最後のオフライン保管".into(),
            b.last_offline.as_ref().map_or("なし".into(), |x| {
                format!("{}（{}）", jst(x.at), x.medium)
            }),
        ));
        d.fields(f);
        if !b.warnings.is_empty() {
            d.list(
                b.warnings
                    .iter()
                    .map(|w| format!("要対応: {}", w.message_ja()))
                    .collect(),
            );
        }
        d.heading("3. システムが止まったとき（サイバー攻撃を想定）");
        d.list(vec![
            "感染が疑われる機器をネットワークから切り離す（電源は切らない）。".into(),
            "連絡体制図に従い、安全管理責任者・事業者・厚生労働省・警察に連絡する。".into(),
            "紙の記録用紙で診療を続ける。紙の記録は後日 mamori に代行入力し、責任者が承認して確定する（入力日時と原本の日時の両方が残る）。".into(),
            "被害のない機器で、感染前の世代のバックアップから復元する（mamori backup restore）。復元後は mamori verify で台帳・版・署名の一致を確認してから再開する。".into(),
            "復元までの目標時間と、その間に必要な情報（処方・アレルギー・予約）を院内で決めておく。".into(),
        ]);
        d.heading("4. 見直し");
        d.para(format!(
            "この計画は年1回、自己点検と合わせて見直す。制定日: {}。",
            or_blank(&profile.bcp_adopted_on)
        ));
        Ok(d)
    }
}

pub fn unknown_doc() -> ServiceError {
    ServiceError::not_found("文書")
}
