//! The two documents the law expects beside the data, drafted from mamori's own settings: the
//! 電子取引データの訂正及び削除の防止に関する事務処理規程 (施行規則4条1項4号; kept even though
//! mamori's version history already meets 3号, because inspectors ask for the facility's rule)
//! and the システム概要書 (施行規則2条2項1号). Drafts to read, adapt and adopt — not the
//! NTA's sample text.

use super::*;
use mamori_compliance::doc::Doc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BooksDoc {
    ProcessingRules,
    SystemOverview,
}

impl BooksDoc {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rules" => Some(Self::ProcessingRules),
            "overview" => Some(Self::SystemOverview),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::ProcessingRules => "rules",
            Self::SystemOverview => "overview",
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

impl Service {
    /// A draft document for the transaction documents. Readable by those who keep the
    /// documents and by those who assess the facility.
    pub async fn bookkeeping_doc(self: &Arc<Self>, p: &Principal, kind: BooksDoc) -> Result<Doc> {
        let pc = p.clone();
        self.read_audited(p, actions::TRANSACTION_VIEWED, move |svc, r, t| {
            t.detail("document", kind.code());
            if !(pc.role.allows(Action::ReadTransactions, None)
                || pc.role.allows(Action::ReadAudit, None)
                || pc.role.allows(Action::AdminSettings, None))
            {
                return Err(ServiceError::forbidden(
                    "取引書類の文書を見る権限がありません",
                ));
            }
            let settings = settings_of(r)?;
            let profile = crate::compliance::observe::profile_in(r)?;
            let roles: Vec<mamori_domain::permission::Role> = r
                .roles()?
                .into_iter()
                .filter(|x| x.allows(Action::WriteTransactions, None))
                .collect();
            let keepers: Vec<String> = r
                .accounts()?
                .into_iter()
                .filter(|a| a.active && !a.is_service && roles.iter().any(|x| x.code == a.role))
                .map(|a| a.display_name)
                .collect();
            let role_names: Vec<String> = roles.iter().map(|x| x.name_ja.clone()).collect();
            let tsa = {
                let urls = svc.config.evidence.tsa_url_list();
                if urls.is_empty() {
                    if svc.config.evidence.dev_tsa {
                        "開発用TSA（法的効力なし。運用前に総務大臣認定のタイムスタンプ局に切り替えること）".to_owned()
                    } else {
                        "（未設定）".to_owned()
                    }
                } else {
                    urls.join("、")
                }
            };
            let facility = svc.facility().to_owned();
            let mut d = match kind {
                BooksDoc::ProcessingRules => {
                    let mut d = Doc::new("電子取引データの訂正及び削除の防止に関する事務処理規程（草案）");
                    d.para("この草案は mamori の現在の設定を書き写したものです。院内で読み合わせ、実情に合わせて直したうえで制定し、備え付けてください。");
                    d.heading("第1条（目的）");
                    d.para(format!("この規程は、{facility}（以下「当院」）が電子取引により授受する取引情報（以下「電子取引データ」）を、電子帳簿保存法第7条に従い、正当な理由のない訂正及び削除を防いで保存するために必要な事項を定める。"));
                    d.heading("第2条（適用範囲）");
                    d.para("この規程は、当院の役員及び職員が行う電子取引（電子メール、ウェブサイト、電子インボイス等による請求書・領収書・見積書・契約書・納品書・注文書その他の取引関係書類の授受）に適用する。");
                    d.heading("第3条（管理責任者）");
                    d.fields(vec![
                        ("管理責任者".into(), or_blank(&profile.director)),
                        ("処理責任者（取引書類を登録・訂正できる者）".into(), if keepers.is_empty() { "（該当する職員がいません）".into() } else { keepers.join("、") }),
                        ("処理責任者の職種".into(), role_names.join("、")),
                        ("医療情報システム安全管理責任者".into(), or_blank(&profile.security_officer)),
                    ]);
                    d.heading("第4条（保存の方法）");
                    d.list(vec![
                        "電子取引データは、受領又は発行の後、mamori（取引書類）に登録して保存する。共有フォルダや個人の端末に保存したものは保存とみなさない。".into(),
                        "登録の際は、取引年月日、取引金額、取引先を必ず入力する（電子インボイスの XML は自動で読み取られる）。".into(),
                        if settings.processing_months == 0 {
                            "受領した電子取引データは、受領後速やかに（おおむね7営業日以内に）登録する。登録と同時にタイムスタンプが付与される。".to_owned()
                        } else {
                            format!("受領した電子取引データは、通常の処理期間（{} か月）を経過した後、速やかに（おおむね7営業日以内に）登録する。登録と同時にタイムスタンプが付与される。", settings.processing_months)
                        },
                        format!("タイムスタンプ局: {tsa}"),
                    ]);
                    d.heading("第5条（訂正及び削除の原則禁止）");
                    d.para("保存した電子取引データの訂正及び削除は、原則として行わない。mamori には削除の機能がなく、訂正・取消は新しい版として記録され、前の版は残る。");
                    d.heading("第6条（訂正及び取消の手続）");
                    d.list(vec![
                        "取引先の誤りや二重登録など、業務上やむを得ない理由で訂正又は取消を行うときは、処理責任者が理由を入力して記録する。".into(),
                        "訂正又は取消の内容、理由、日時、処理した者は、mamori の台帳（改ざん検知台帳）に自動で記録される。".into(),
                        "管理責任者は、訂正及び取消の履歴を定期的に確認する。".into(),
                    ]);
                    d.heading("第7条（保存期間）");
                    d.para(format!(
                        "電子取引データは、{}として定められた期間（{}月決算。書類ごとの保存期限は mamori が計算して表示する）保存する。保存期間中は削除しない。",
                        settings.legal_form.label_ja(),
                        match settings.legal_form { bookkeeping::LegalForm::Individual => 12, _ => settings.fiscal_year_end_month }
                    ));
                    d.heading("第8条（税務調査への対応）");
                    d.para("税務職員からダウンロードの求めがあったときは、mamori の「税務調査用ダウンロード」で指定された期間の書類、索引及び履歴を提出する。");
                    d.heading("附則");
                    d.para("この規程は、令和　年　月　日から施行する。");
                    d
                }
                BooksDoc::SystemOverview => {
                    let mut d = Doc::new("電子取引データ保存システム　システム概要書（草案）");
                    d.para("電子帳簿保存法施行規則第2条第2項第1号の「システム概要書」として、当院が電子取引データの保存に使う mamori の構成と機能を記す草案です。");
                    d.heading("1. システムの名称と版");
                    d.fields(vec![
                        ("名称".into(), "mamori（守り）".into()),
                        ("版".into(), env!("CARGO_PKG_VERSION").into()),
                        ("設置".into(), format!("{facility} の院内サーバ（自己設置）")),
                        ("データベース".into(), if svc.store().on_postgres() { "PostgreSQL".to_owned() } else { "SQLite（サーバ内の1ファイル）".to_owned() }),
                    ]);
                    d.heading("2. 扱うデータ");
                    d.para("電子取引により授受した請求書、領収書、見積書、契約書、納品書、注文書等のデータ（PDF・画像・電子インボイス（JP PINT / Peppol UBL の XML））と、その取引年月日、取引金額、取引先、登録番号、受領日などの項目。");
                    d.heading("3. 機能");
                    d.list(vec![
                        "登録: ファイルと項目を登録する。XML の電子インボイスは項目を自動で読み取る。同じファイルや同じ書類番号の二重登録は拒否する。".into(),
                        format!("タイムスタンプ: 登録したファイルに RFC 3161 のタイムスタンプを付与する（{tsa}）。失敗した場合は自動で再試行する。"),
                        "訂正・取消: 理由を付けて新しい版として記録する。前の版とファイルは残り、削除の機能はない。".into(),
                        "検索: 取引年月日と取引金額は範囲で、取引先は名称の一部で検索でき、これらを組み合わせられる。項目が未入力の書類も探せる。".into(),
                        "表示・印刷: 書類の詳細画面（全項目・全版・検査結果）を画面とプリンタに出力し、ファイルを開ける。".into(),
                        "一括検証: 指定した期間のすべてのタイムスタンプとファイルを一度に検証する。".into(),
                        "税務調査用ダウンロード: 期間の全書類のファイル、索引 CSV、全版の履歴、タイムスタンプを ZIP で出力する。".into(),
                        "インボイスの検査: 受領した請求書の登録番号（検査用数字）、記載事項、税率ごとの消費税額を確かめ、結果を表示する（内容は変えない）。".into(),
                    ]);
                    d.heading("4. 記録の真実性を保つ仕組み");
                    d.list(vec![
                        "すべての登録・訂正・取消・閲覧・ダウンロードは、改ざん検知台帳（RFC 6962 のハッシュ木、署名付きチェックポイント）に記録される。".into(),
                        "データベースの版とファイルは台帳と突き合わせて検証でき（mamori verify）、書き換えは検出される。".into(),
                        "データベースのトリガーが版・タイムスタンプの変更と削除を拒否する。".into(),
                    ]);
                    d.heading("5. 利用者と権限");
                    d.fields(vec![
                        ("登録・訂正できる職種".into(), role_names.join("、")),
                        ("その職員".into(), if keepers.is_empty() { "（なし）".into() } else { keepers.join("、") }),
                    ]);
                    d.heading("6. バックアップ");
                    let targets = svc.config.backup.target_list();
                    d.para(if targets.is_empty() {
                        "（バックアップ先が未設定です。管理 › バックアップ で設定してください）".to_owned()
                    } else {
                        format!("世代管理された暗号化バックアップ（保存先: {}）に、データベースとファイルを含めて保存する。復元訓練で復元できることを確かめる。", targets.join("、"))
                    });
                    d.heading("7. 保存期間の設定");
                    d.fields(vec![
                        ("法人の種類".into(), settings.legal_form.label_ja().into()),
                        ("決算月".into(), format!("{} 月", settings.fiscal_year_end_month)),
                        ("事務処理規程の処理期間".into(), if settings.processing_months == 0 { "なし（受領後速やかに）".into() } else { format!("{} か月", settings.processing_months) }),
                    ]);
                    d
                }
            };
            d.subtitle.insert(0, format!("施設: {facility}"));
            d.subtitle.push(format!(
                "作成: {}（mamori の設定から作成）",
                crate::ledger::audit::jst(svc.now())
            ));
            d.footer = format!("{} — {facility}", d.title);
            Ok(d)
        })
        .await
    }
}
