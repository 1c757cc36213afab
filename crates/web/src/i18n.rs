//! Japanese first, English selectable (cookie `mamori_lang=en`). Every label the UI shows
//! comes from this table, so a missing translation is a compile-time-visible gap here.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

const MESSAGES: &[(&str, &str, &str)] = &[
    ("nav.compliance", "自己点検", "Self-assessment"),
    ("cmp.assessments", "点検", "Assessments"),
    ("cmp.assessment", "自己点検", "Self-assessment"),
    ("cmp.assets", "機器台帳", "Asset ledger"),
    ("cmp.risks", "リスク台帳", "Risk register"),
    (
        "cmp.registers",
        "破棄・持ち出し・研修・外部保存",
        "Disposal, take-out, training, outsourcing",
    ),
    ("reg.none", "まだ記録がありません。", "No entries yet."),
    ("reg.attendees", "参加者", "Attendees"),
    ("reg.updated", "更新", "Updated"),
    ("reg.by_mamori", "mamori が記録", "Recorded by mamori"),
    (
        "reg.no_delete",
        "台帳の記録は削除できません。直した内容は新しい版として台帳（ledger）に残ります。",
        "Entries cannot be deleted; every change stays in the ledger.",
    ),
    ("reg.edit", "記録を直す", "Edit entry"),
    ("reg.add", "記録を追加", "Add an entry"),
    ("reg.required", "（必須）", "(required)"),
    ("reg.choose", "選んでください", "Choose"),
    ("cmp.contacts", "連絡体制図", "Contact chart"),
    ("cmp.profile", "体制と文書", "Organisation and documents"),
    (
        "cmp.home_help",
        "厚生労働省のサイバーセキュリティ対策チェックリストやガイドラインで自己点検します。mamori が自分の設定や記録から確かめられる項目は、根拠と確認時刻つきで自動的に回答されます。残りの項目に回答し、証跡を添付して、立入検査用の報告書を印刷してください。",
        "Assess the facility against the MHLW cybersecurity checklist or guideline. Items mamori can check from its own settings and records are answered automatically, with the evidence and the time it was checked. Answer the rest, attach evidence, and print the report for the inspection.",
    ),
    (
        "cmp.catalogue_problem",
        "読み込めなかった点検表",
        "Catalogue not loaded",
    ),
    (
        "cmp.none",
        "まだ自己点検はありません。下から始めてください。",
        "No assessments yet. Start one below.",
    ),
    ("cmp.date", "点検日", "Assessment date"),
    ("cmp.catalogue", "点検表", "Catalogue"),
    ("cmp.score", "達成率", "Score"),
    ("cmp.closed", "締め済み", "Closed"),
    ("cmp.open", "点検中", "Open"),
    ("cmp.new", "新しい自己点検", "New assessment"),
    ("cmp.start", "点検を始める", "Start"),
    ("cmp.observed_at", "観測の時点", "Observed at"),
    ("cmp.yes", "はい", "Yes"),
    ("cmp.no", "いいえ", "No"),
    ("cmp.na", "該当なし", "Not applicable"),
    ("cmp.unanswered", "未回答", "Not answered"),
    ("cmp.previous", "前回", "Last time"),
    (
        "cmp.report",
        "報告書を表示・印刷",
        "View and print the report",
    ),
    ("cmp.report_pdf", "報告書（PDF）", "Report (PDF)"),
    ("cmp.close", "点検を締める", "Close the assessment"),
    (
        "cmp.closed_help",
        "締めた点検は変更できません。観測した回答はこの時点のもので固定されています。",
        "A closed assessment cannot change; its observed answers are frozen as of closing.",
    ),
    (
        "cmp.assessment_help",
        "「観測」はmamoriが自分の状態から確かめた回答で、設定や記録が変わると自動で変わります。「申告」は担当者の回答です。観測と違う回答にするにはメモに理由が必要です。「いいえ」には目標日を入れてください。",
        "'Observed' answers come from mamori's own state and change when settings or records change. 'Declared' answers are a person's. Overriding an observation needs a note; a 'No' needs a target date.",
    ),
    (
        "cmp.next",
        "次に行うこと（優先順）",
        "What to do next (most important first)",
    ),
    ("cmp.required_now", "今年度必須", "Required this year"),
    ("cmp.refs", "根拠", "Basis"),
    ("cmp.uncertain", "出典の注記", "Source note"),
    ("cmp.src_observed", "観測", "Observed"),
    ("cmp.src_declared", "申告", "Declared"),
    (
        "cmp.src_partly",
        "一部観測・要回答",
        "Partly observed: your answer needed",
    ),
    (
        "cmp.unseen",
        "mamori からは見えない部分（責任者が確認して回答）",
        "What mamori cannot see (the officer checks and answers)",
    ),
    ("cmp.overrides", "観測と異なる", "Differs from observation"),
    ("cmp.observed", "mamoriの観測", "Observed by mamori"),
    ("cmp.answered_by", "回答者", "Answered by"),
    ("cmp.owner", "担当者", "Owner"),
    ("cmp.due", "目標日", "Target date"),
    ("cmp.note", "メモ", "Note"),
    (
        "cmp.note_help",
        "観測と違う回答にする理由や、対策の予定を書いてください。",
        "Why you override the observation, or what is planned.",
    ),
    (
        "cmp.answer_this",
        "回答・証跡を追加",
        "Answer or attach evidence",
    ),
    ("cmp.answer", "回答", "Answer"),
    (
        "cmp.withdraw",
        "未回答に戻す（観測に従う）",
        "Withdraw (follow the observation)",
    ),
    ("cmp.save_answer", "回答を保存", "Save answer"),
    (
        "cmp.evidence_file",
        "証跡ファイル（PDF・画像・Excel・Word）",
        "Evidence file (PDF, image, Excel, Word)",
    ),
    ("cmp.evidence_link", "または証跡のリンク", "Or a link"),
    ("cmp.evidence_name", "証跡の名前（任意）", "Name (optional)"),
    ("cmp.attach", "証跡を添付", "Attach"),
    (
        "cmp.assets_help",
        "サーバ・端末PC・ネットワーク機器・医療機器を登録します。パッチ適用日・リモート保守・MDS/SDS・接続元制限の記入から、チェックリストの該当項目が自動で回答されます。",
        "Register servers, PCs, network and medical devices. The checklist items about them are answered from patch dates, remote maintenance, MDS/SDS and connection restrictions.",
    ),
    ("cmp.imported", "取り込んだ機器の数", "Devices imported"),
    (
        "cmp.no_assets",
        "まだ機器が登録されていません。",
        "No devices registered yet.",
    ),
    ("cmp.kind", "種類", "Kind"),
    ("cmp.name", "機器名", "Device name"),
    ("cmp.location", "設置場所", "Location"),
    ("cmp.asset_owner", "管理者", "Responsible person"),
    ("cmp.os", "OS・ファームウェア", "OS / firmware"),
    ("cmp.patched_on", "最後のパッチ適用日", "Last patched"),
    ("cmp.remote", "リモート保守", "Remote maintenance"),
    ("cmp.restriction", "接続元制限", "Connection restriction"),
    ("cmp.maintainer", "保守を行う者", "Maintained by"),
    ("cmp.vendor", "事業者", "Vendor"),
    ("cmp.received", "受領済み", "Received"),
    ("cmp.not_received", "未受領", "Not received"),
    ("cmp.unknown", "未確認", "Not confirmed"),
    ("cmp.attach_mds", "MDS/SDSを添付", "Attach MDS/SDS"),
    ("cmp.edit", "編集", "Edit"),
    ("cmp.delete", "削除", "Delete"),
    ("cmp.export_csv", "CSVで出力", "Export CSV"),
    ("cmp.import_csv", "CSVから取り込む", "Import from CSV"),
    (
        "cmp.csv_help",
        "1行目は見出し（kind,name,location,owner,os,patched_on,remote_maintenance,maintainer,vendor,mds_sds,connection_restriction,note）。種類は server・pc・network・medical（サーバ・端末PC・ネットワーク機器・医療機器）。同じ機器名の行は置き換えます。1行でも誤りがあると何も取り込まず、誤りのある行をすべて示します。CSVで出力したファイルはそのまま取り込めます。",
        "First row: the column names (kind,name,location,owner,os,patched_on,remote_maintenance,maintainer,vendor,mds_sds,connection_restriction,note). kind is server, pc, network or medical. A row with an existing name replaces that device. If any row is wrong nothing is imported and every wrong row is listed. An exported file imports as is.",
    ),
    ("cmp.csv_file", "CSVファイル（UTF-8）", "CSV file (UTF-8)"),
    ("cmp.import", "取り込む", "Import"),
    ("cmp.edit_asset", "機器を編集", "Edit device"),
    ("cmp.add_asset", "機器を登録", "Add a device"),
    ("cmp.save", "保存", "Save"),
    (
        "cmp.risks_help",
        "医療機関でよく起きる脅威をあらかじめ登録しています。起こりやすさ・影響（1〜5）と対策、対策を実現する mamori の機能、対策後に残るリスクを見直してください。",
        "Common threats to medical institutions are pre-registered. Review likelihood and impact (1–5), the controls, which mamori feature implements them, and the risk left.",
    ),
    (
        "cmp.risk_asset",
        "対象（資産・情報）",
        "Asset or information",
    ),
    ("cmp.threat", "脅威", "Threat"),
    ("cmp.risk_level", "リスク", "Risk"),
    ("cmp.control", "対策", "Control"),
    (
        "cmp.feature",
        "対策を実現する mamori の機能",
        "mamori feature",
    ),
    ("cmp.residual", "残留リスク（1〜5）", "Residual risk (1–5)"),
    ("cmp.likelihood", "起こりやすさ（1〜5）", "Likelihood (1–5)"),
    ("cmp.impact", "影響（1〜5）", "Impact (1–5)"),
    ("cmp.edit_risk", "リスクを編集", "Edit risk"),
    ("cmp.add_risk", "リスクを登録", "Add a risk"),
    (
        "cmp.contacts_help",
        "インシデント（サイバー攻撃・情報漏えい）のときの連絡先です。組織内・事業者・厚生労働省・警察の連絡先がそろうと、チェックリストの連絡体制図の項目が「はい」になります。名前を空にした行は削除されます。",
        "Who to call in an incident. When staff, vendors, MHLW and the police all have a contact, the checklist's contact-chart item becomes Yes. Rows with an empty name are removed.",
    ),
    ("cmp.category", "区分", "Category"),
    ("cmp.contact_name", "氏名・役割", "Name / role"),
    ("cmp.organisation", "所属", "Organisation"),
    ("cmp.phone", "電話", "Phone"),
    ("cmp.email", "メール", "E-mail"),
    (
        "cmp.doc_contacts",
        "連絡体制図を表示・印刷",
        "View and print the contact chart",
    ),
    (
        "cmp.profile_help",
        "医療情報システム安全管理責任者と、運用管理規程・BCP を制定した日を記録します。チェックリストの体制の項目はここから回答されます。",
        "Record the security officer and when the operating rules and the BCP were adopted; the checklist's organisation items are answered from here.",
    ),
    ("cmp.saved", "保存しました。", "Saved."),
    (
        "cmp.security_officer",
        "医療情報システム安全管理責任者",
        "Security officer (医療情報システム安全管理責任者)",
    ),
    ("cmp.director", "管理者（院長）", "Director"),
    (
        "cmp.rules_adopted_on",
        "運用管理規程の制定日",
        "Operating rules adopted on",
    ),
    (
        "cmp.bcp_adopted_on",
        "BCP（事業継続計画）の制定日",
        "BCP adopted on",
    ),
    ("cmp.documents", "文書", "Documents"),
    (
        "cmp.documents_help",
        "mamori の現在の設定から作った草案です。院内で見直してから制定してください。",
        "Drafts made from mamori's current settings. Review them before adopting them.",
    ),
    (
        "cmp.doc_rules",
        "運用管理規程（草案）",
        "Operating rules (draft)",
    ),
    (
        "cmp.doc_bcp",
        "バックアップ方針・BCP（草案）",
        "Backup policy and BCP (draft)",
    ),
    ("cmp.back", "戻る", "Back"),
    (
        "account.passkey_lead",
        "パスワードは確認できました。下の「パスキーで確認」を押して、登録したパスキーで確認してください。パスキーの端末をなくした場合は、回復コードを入力できます。",
        "Your password is correct. Press “Confirm with a passkey” below and use your registered passkey. If you lost its device, enter a recovery code.",
    ),
    ("account.passkeys", "パスキー", "Passkeys"),
    (
        "account.passkeys_help",
        "パスキーは、指紋・顔・PIN で開く端末や USB キーの鍵です。確認コードの代わりに2要素目として使えます。登録したサイト以外では使えないため、偽サイトに盗まれません。",
        "A passkey is a key in your device (opened with fingerprint, face or PIN) or a USB key. It works as the second factor instead of a code, and only on this site, so a fake site cannot steal it.",
    ),
    ("account.passkey_added", "登録", "added"),
    ("account.passkey_used", "最終使用", "last used"),
    ("account.passkey_remove", "削除", "Remove"),
    (
        "account.passkey_needs_js",
        "パスキーの登録と使用にはブラウザの JavaScript が必要です。",
        "Passkeys need JavaScript in the browser.",
    ),
    (
        "account.passkey_name",
        "パスキーの名前",
        "Name of the passkey",
    ),
    (
        "account.passkey_name_example",
        "例: 診察室1のPC",
        "e.g. Exam room 1 PC",
    ),
    (
        "account.passkey_register",
        "パスキーを登録",
        "Register a passkey",
    ),
    (
        "account.passkey_removed",
        "パスキーを削除しました。",
        "The passkey was removed.",
    ),
    (
        "account.or_passkey",
        "または、登録したパスキーで確認できます。",
        "Or confirm with your passkey.",
    ),
    (
        "account.passkey_verify",
        "パスキーで確認",
        "Confirm with a passkey",
    ),
    (
        "admin.client_cert",
        "施設の証明書（クライアント証明書）をインストールした端末からのみ利用できる",
        "Members connect only from devices with a facility client certificate",
    ),
    (
        "admin.client_cert_help",
        "サーバーを --client-cert optional（または required）で HTTPS 起動しているときに有効です。証明書なしの接続からはログインも操作もできません。",
        "Takes effect when the server runs HTTPS with --client-cert optional (or required): connections without a certificate can neither sign in nor act.",
    ),
    ("cmp.by", "までに", " at the latest"),
    ("admin.evidence", "電子署名", "Signatures"),
    (
        "evidence.admin_help",
        "確定した記録は作成者の鍵で電子署名 (CAdES) され、タイムスタンプ局 (TSA) の時刻で証明されます。mamori は署名と台帳のチェックポイントを1日ごとに証拠記録 (RFC 4998) にまとめ、TSA の証明書が切れる前に更新して、保存期間のあいだ証明できるようにします。",
        "Finalised records are signed (CAdES) with their author's key and time-stamped by a time-stamping authority (TSA). Once a day mamori seals signatures and ledger checkpoints into evidence records (RFC 4998) and renews them before the TSA's certificate expires, so they stay provable for the whole retention period.",
    ),
    (
        "evidence.all_ok",
        "署名・タイムスタンプ・証拠記録に確認の必要な点はありません。",
        "Signatures, time-stamps and evidence records need no attention.",
    ),
    (
        "evidence.signing",
        "確定時の電子署名",
        "Signing at finalisation",
    ),
    ("evidence.on", "有効", "On"),
    ("evidence.off", "無効", "Off"),
    (
        "evidence.tsa",
        "タイムスタンプ局 (TSA)",
        "Time-stamping authority",
    ),
    (
        "evidence.pending",
        "タイムスタンプ待ちの署名",
        "Signatures waiting for a time-stamp",
    ),
    (
        "evidence.unsealed",
        "証拠記録にまだ入っていない署名",
        "Signatures not yet sealed",
    ),
    (
        "evidence.families",
        "証拠記録（ハッシュ木）の数",
        "Evidence records (hash trees)",
    ),
    ("evidence.last_sealed", "最後の封印", "Last sealed"),
    ("evidence.next_renewal", "次の更新期限", "Next renewal due"),
    (
        "evidence.seal_now",
        "今すぐ署名・封印・更新を実行",
        "Sign, seal and renew now",
    ),
    (
        "evidence.dev_tsa",
        "開発用TSA・法的効力なし",
        "Development TSA, no legal weight",
    ),
    (
        "evidence.title",
        "電子署名とタイムスタンプの検証",
        "Signatures and time-stamps",
    ),
    ("evidence.back", "記録に戻る", "Back to the record"),
    (
        "evidence.help",
        "確定した各版について、作成者の電子署名、署名の時刻を証明するタイムスタンプ、長期保存のための証拠記録、台帳の記録が、保存されている内容と一致するかをいま検証した結果です。",
        "For each finalised version: the author's signature, the time-stamp proving when it was signed, the evidence record for long-term preservation and the ledger entry, checked just now against what is stored.",
    ),
    (
        "evidence.none",
        "確定した版はまだありません。",
        "No version has been finalised yet.",
    ),
    (
        "evidence.passed",
        "すべての版の検証に成功しました。",
        "Every version verified.",
    ),
    (
        "evidence.failed",
        "検証に失敗した版があります。内容が改ざんされた可能性があります。安全管理責任者に連絡してください。",
        "Some version failed verification: its content may have been altered. Tell the security officer.",
    ),
    ("evidence.status", "結果", "Result"),
    ("evidence.signer", "署名者", "Signer"),
    ("evidence.timestamp", "タイムスタンプ", "Time-stamp"),
    ("evidence.record", "証拠記録 (長期保存)", "Evidence record"),
    (
        "evidence.not_sealed",
        "次の封印で追加されます",
        "Added at the next sealing",
    ),
    (
        "evidence.download",
        "証拠一式をダウンロード (ZIP)",
        "Download the evidence bundle (ZIP)",
    ),
    (
        "evidence.download_help",
        "内容・添付・署名・タイムスタンプ・証拠記録・台帳の証明をまとめた ZIP です。mamori がなくても、同梱の verify.sh（OpenSSL）で検証できます。ダウンロードは台帳に記録されます。",
        "A ZIP of the content, attachments, signatures, time-stamps, evidence records and ledger proofs. It verifies without mamori, with the enclosed verify.sh (OpenSSL). The download is recorded in the ledger.",
    ),
    ("evidence.verify", "署名の検証", "Verify signatures"),
    ("evidence.signature", "電子署名", "Signature"),
    ("evidence.signed_ts", "タイムスタンプ", "Time-stamped"),
    (
        "evidence.ts_pending",
        "タイムスタンプ待ち",
        "Time-stamp pending",
    ),
    (
        "evidence.awaiting",
        "署名待ち（作成者の署名がまだありません）",
        "Awaiting the author's signature",
    ),
    (
        "evidence.sealed",
        "証拠記録で長期保護済み",
        "Protected by an evidence record",
    ),
    ("admin.backup", "バックアップ", "Backups"),
    (
        "backup.help",
        "記録・台帳・添付ファイル・鍵を、暗号化して世代管理しながら保存します。ランサムウェアに備え、書き込み禁止（オブジェクトロック）の保存先と、ネットワークから切り離した媒体の両方に保管し、定期的に復元訓練で戻せることを確かめてください。復旧の手順は docs/operations.md の「バックアップと復旧」にあります。",
        "Records, ledger, attachments and keys are stored encrypted, in generations. Against ransomware, keep copies both on write-once (Object Lock) storage and on media disconnected from the network, and prove with restore drills that they come back. The recovery procedure is in docs/operations.md (Backup and restore).",
    ),
    (
        "backup.all_ok",
        "バックアップ・オフライン保管・復元訓練はすべて期限内です。",
        "Backups, offline copies and restore drills are all up to date.",
    ),
    ("backup.warnings", "確認が必要です", "Needs attention"),
    (
        "backup.running",
        "バックアップまたは復元訓練を実行中です。しばらくしてからこのページを開き直してください。",
        "A backup or restore drill is running. Reload this page in a while.",
    ),
    ("backup.run_now", "今すぐバックアップ", "Back up now"),
    ("backup.drill_now", "復元訓練を実行", "Run a restore drill"),
    (
        "backup.started",
        "バックアップを開始しました。終わると結果がこのページに表示されます。",
        "The backup has started. Its result will show on this page.",
    ),
    (
        "backup.drill_started",
        "復元訓練を開始しました。終わると結果がこのページに表示されます。",
        "The restore drill has started. Its result will show on this page.",
    ),
    (
        "backup.erased",
        "バックアップ先を消去し、破棄台帳に消去記録（PDF）を残しました。",
        "The backup target was erased; the disposal register has its erasure record (PDF).",
    ),
    (
        "backup.erased_partly",
        "消去しましたが、保持期間（Object Lock など）のため残ったデータがあります。暗号化されたままで、鍵の格納部は削除済みです。破棄台帳の消去記録を確認し、保持期間が過ぎたらもう一度消去してください。",
        "Erased, but a retention period keeps some objects (still encrypted, their key slots deleted). See the erasure record and erase again when the retention ends.",
    ),
    (
        "backup.erase",
        "バックアップ先の消去（媒体の破棄・契約の終了）",
        "Erase a backup target (retiring a medium or ending a contract)",
    ),
    (
        "backup.erase_help",
        "使わなくなった媒体やクラウドのバックアップ先から、mamori が書いたデータをすべて削除します（S3 では全バージョン）。元に戻せません。設定されたバックアップ鍵で開けるリポジトリだけが対象です。消去の記録は破棄台帳に残ります。",
        "Deletes everything mamori wrote to a retired medium or cloud target (every version on S3). This cannot be undone. Only repositories the configured backup key opens can be erased; the disposal register records it.",
    ),
    (
        "backup.erase_confirm",
        "確認のため、同じ名前をもう一度入力",
        "Type the same name again to confirm",
    ),
    ("backup.erase_button", "消去する", "Erase"),
    (
        "takeout.title",
        "持ち出し用に暗号化して出力",
        "Encrypted export to take out",
    ),
    (
        "takeout.help",
        "院外へ渡す（紹介先・監査・訴訟対応など）ときは、暗号化した ZIP（AES-256）で出力します。受け取る人は 7-Zip などで開けます。パスワードは別の手段（電話・別のメール）で伝えてください。持ち出し台帳に自動で記録されます。",
        "To hand records outside the facility, export them as an AES-256 encrypted ZIP (opens with 7-Zip and similar). Give the password by another channel. The take-out register records it.",
    ),
    ("takeout.password", "パスワード", "Password"),
    (
        "takeout.password_help",
        "mamori が作った推測できないパスワードです。控えてから出力してください（mamori には残りません）。自分で決める場合は16文字以上。",
        "A random password made by mamori: note it before exporting (mamori does not keep it). Your own must have 16 characters or more.",
    ),
    ("takeout.purpose", "目的", "Purpose"),
    ("takeout.destination", "持ち出し先", "Destination"),
    ("takeout.approved_by", "承認者", "Approved by"),
    ("takeout.button", "暗号化して出力", "Export encrypted"),
    ("backup.targets", "バックアップ先", "Backup targets"),
    ("backup.keep", "保持する世代数", "Generations kept"),
    (
        "backup.no_targets",
        "バックアップ先がまだ設定されていません。",
        "No backup target is configured yet.",
    ),
    ("backup.target", "バックアップ先", "Target"),
    ("backup.last_ok", "最後の成功", "Last success"),
    ("backup.snapshot", "スナップショット", "Snapshot"),
    ("backup.size", "大きさ", "Size"),
    (
        "backup.locked_until",
        "削除・上書き禁止の期限",
        "Locked until",
    ),
    ("backup.last_failure", "最後の失敗", "Last failure"),
    ("backup.seconds", "秒", "s"),
    ("backup.offline", "オフライン保管", "Offline copies"),
    (
        "backup.offline_help",
        "外付けディスクなどにバックアップを取ったあと、その媒体を取り外して保管したら記録してください。どの世代がどの媒体にあるかが台帳に残ります。",
        "After backing up to removable media, record when you disconnect and store it. The ledger keeps which generation is on which medium.",
    ),
    (
        "backup.offline_last",
        "最後のオフライン保管",
        "Last offline copy",
    ),
    (
        "backup.offline_none",
        "オフライン保管の記録はまだありません。",
        "No offline copy recorded yet.",
    ),
    (
        "backup.offline_record",
        "媒体を取り外したことを記録",
        "Record a disconnected medium",
    ),
    ("backup.medium", "媒体の名前（ラベル）", "Medium label"),
    (
        "backup.medium_help",
        "例: USB-2（月曜）、RDX-A。媒体に貼ったラベルと同じにしてください。",
        "e.g. USB-2 (Monday), RDX-A: the same as the label on the medium.",
    ),
    (
        "backup.note",
        "メモ（保管場所など）",
        "Note (where it is kept)",
    ),
    ("backup.offline_button", "記録する", "Record"),
    ("backup.drill", "復元訓練", "Restore drills"),
    (
        "backup.drill_help",
        "最新のバックアップを一時領域に復元し、起動して全件検証し、台帳と記録がバックアップ時と同じかを確かめます。かかった時間が復旧に必要な時間の目安です。稼働中のデータには触れません。",
        "Restores the newest backup into scratch space, opens it and verifies everything, and checks that its ledger and records are those of the backup. The time taken is your recovery-time estimate. The live data is not touched.",
    ),
    ("backup.drill_last", "最後の復元訓練", "Last restore drill"),
    ("backup.drill_ok", "成功", "passed"),
    ("backup.drill_ng", "失敗", "FAILED"),
    ("backup.rto", "復旧時間", "recovery time"),
    (
        "backup.drill_none",
        "復元訓練はまだ行われていません。",
        "No restore drill has been run yet.",
    ),
    ("app", "mamori（守り）", "mamori"),
    ("login.title", "ログイン", "Sign in"),
    ("login.id", "ログインID", "Login ID"),
    ("login.password", "パスワード", "Password"),
    ("login.submit", "ログイン", "Sign in"),
    (
        "login.help",
        "パスワードを忘れた場合やロックされた場合は、システム管理者に連絡してください。",
        "If you forgot your password or your account is locked, ask your system administrator.",
    ),
    (
        "login.expired",
        "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください",
        "You were signed out after a period without activity. Please sign in again.",
    ),
    (
        "login.stale",
        "フォームの有効期限が切れました。もう一度入力してください",
        "The form has expired. Please enter it again.",
    ),
    ("password.title", "パスワードの変更", "Change password"),
    (
        "password.lead",
        "初回ログイン時、またはパスワードの再設定後は、新しいパスワードを設定してください。",
        "Set a new password after your first sign-in or after a reset.",
    ),
    ("password.old", "現在のパスワード", "Current password"),
    (
        "password.second_factor",
        "確認コード（2要素認証を設定している場合）",
        "Verification code (if you use two-factor authentication)",
    ),
    (
        "password.second_factor_hint",
        "認証アプリの6桁のコード、または回復コード。2要素認証を設定していなければ空欄のままにしてください。",
        "The 6-digit code from your authenticator app, or a recovery code. Leave empty if you have not set up two-factor authentication.",
    ),
    ("password.new", "新しいパスワード", "New password"),
    (
        "password.rule",
        "施設で決めた文字数（既定は8文字）以上で、英字・数字・記号（空白も可）を混ぜてください。以前のパスワードやログインIDは使えません。",
        "At least the length your facility set (8 by default), mixing letters, digits and symbols (a space counts). Earlier passwords and your login ID cannot be used.",
    ),
    (
        "password.confirm",
        "新しいパスワード（確認）",
        "New password (again)",
    ),
    ("password.submit", "変更してログイン", "Change and sign in"),
    (
        "password.mismatch",
        "確認用のパスワードが一致しません",
        "The two new passwords differ",
    ),
    ("nav.home", "ホーム", "Home"),
    ("nav.logout", "ログアウト", "Sign out"),
    ("nav.lang", "English", "日本語"),
    ("home.search", "患者検索", "Find a patient"),
    ("home.q", "患者ID またはフリガナ", "Patient ID or kana"),
    ("home.search_button", "検索", "Search"),
    (
        "home.pending",
        "承認待ちの代行入力",
        "Proxy entries awaiting your approval",
    ),
    (
        "home.no_pending",
        "承認待ちの代行入力はありません。",
        "Nothing awaits your approval.",
    ),
    ("patients.results", "検索結果", "Results"),
    (
        "patients.none",
        "該当する患者はいません。",
        "No patient matches.",
    ),
    ("patient.id", "患者ID", "Patient ID"),
    ("patient.name", "氏名", "Name"),
    ("patient.kana", "フリガナ", "Kana"),
    ("patient.birth", "生年月日", "Date of birth"),
    ("patient.sex", "性別", "Sex"),
    ("patient.records", "記録一覧", "Records"),
    (
        "patient.no_records",
        "閲覧できる記録はありません。",
        "No records you may read.",
    ),
    ("record.kind", "種別", "Kind"),
    ("record.title", "表題", "Title"),
    ("record.status", "状態", "Status"),
    ("record.author", "責任者", "Author"),
    ("record.enterer", "入力者", "Entered by"),
    ("record.updated", "更新日時", "Updated"),
    ("record.version", "版", "Version"),
    ("record.finalised_at", "確定日時", "Finalised"),
    ("record.created_at", "作成日時", "Created"),
    ("record.reason", "理由", "Reason"),
    ("record.proxy", "代行入力", "Proxy entry"),
    ("record.ledger", "台帳の位置", "Ledger position"),
    ("record.attachments", "添付ファイル", "Attachments"),
    ("record.history", "更新履歴", "History"),
    ("record.rejected", "差し戻し理由", "Returned because"),
    ("nav.audit", "監査", "Audit"),
    ("nav.admin", "管理", "Administration"),
    ("admin.accounts", "アカウント", "Accounts"),
    ("admin.roles", "職種と権限", "Roles and rights"),
    (
        "admin.kinds",
        "記録の種別と保存期間",
        "Record kinds and retention",
    ),
    (
        "admin.unused_label",
        "この日数以上ログインしていないアカウントを表示",
        "Show accounts not used for this many days",
    ),
    ("admin.unused_show", "表示", "Show"),
    ("admin.show_all", "すべて表示", "Show all"),
    (
        "admin.unused_heading",
        "長期間使われていないアカウント（日数）",
        "Accounts unused for (days)",
    ),
    (
        "admin.unused_help",
        "退職・異動した人のアカウントが残っていないか確認し、不要なものは無効にしてください（ガイドライン：不要アカウントの削除）。",
        "Check for accounts of people who left or moved and disable those no longer needed.",
    ),
    (
        "admin.no_accounts",
        "該当するアカウントはありません。",
        "No accounts match.",
    ),
    ("admin.display_name", "氏名（表示名）", "Display name"),
    ("admin.role", "職種", "Role"),
    ("admin.last_login", "最終ログイン", "Last sign-in"),
    ("admin.never", "未ログイン", "Never"),
    ("admin.new_account", "アカウントの追加", "Add an account"),
    (
        "admin.login_help",
        "英小文字・数字・. _ - で64文字以内。一度使ったIDは再利用できません。",
        "Lower-case letters, digits, . _ -; up to 64. A login ID is never reused.",
    ),
    (
        "admin.initial_password",
        "初期パスワード",
        "Initial password",
    ),
    (
        "admin.initial_password_help",
        "本人に口頭などで伝えてください。初回ログイン時に本人が変更します。",
        "Tell the person directly; they must change it at first sign-in.",
    ),
    (
        "admin.service_account",
        "サービスアカウント（電子カルテ等の連携用。APIトークンでのみ接続）",
        "Service account (for EHR integration; API tokens only)",
    ),
    ("admin.create", "追加する", "Add"),
    ("admin.active", "有効", "Active"),
    ("admin.disabled", "無効", "Disabled"),
    ("admin.locked", "ロック中", "Locked"),
    (
        "admin.must_change",
        "パスワード変更待ち",
        "Must change password",
    ),
    ("admin.service", "サービス", "Service"),
    (
        "admin.done",
        "変更しました。この操作は監査ログに記録されています。",
        "Done. This change is recorded in the audit trail.",
    ),
    ("admin.disable", "無効にする", "Disable"),
    ("admin.enable", "再び有効にする", "Re-enable"),
    ("admin.unlock", "ロックを解除する", "Unlock"),
    (
        "admin.disable_help",
        "アカウントは削除せず無効にします（記録の責任者を後から確認できるように）。無効にするとログイン中のセッションも終了します。",
        "Accounts are disabled, never deleted, so authors stay identifiable. Disabling ends the person's sessions.",
    ),
    ("admin.change_role", "職種の変更", "Change role"),
    ("admin.save", "保存", "Save"),
    ("admin.reset", "パスワードの再設定", "Reset password"),
    (
        "admin.reset_help",
        "本人であることを確認してから、仮のパスワードを設定します。本人は次回ログイン時に変更します。",
        "Confirm the person's identity, then set a temporary password they must change at next sign-in.",
    ),
    (
        "admin.temporary_password",
        "仮のパスワード",
        "Temporary password",
    ),
    (
        "admin.identity_check",
        "本人確認の方法",
        "How identity was checked",
    ),
    (
        "admin.identity_help",
        "例：職員証を対面で確認。この記録は台帳に残ります。",
        "E.g. staff card checked in person. Kept in the ledger.",
    ),
    ("admin.reset_button", "再設定する", "Reset"),
    ("admin.token", "APIトークン", "API tokens"),
    (
        "admin.token_once",
        "このトークンは今回だけ表示されます。連携先に安全に設定してください。",
        "This token is shown only once. Configure it in the integration now.",
    ),
    (
        "admin.token_name",
        "用途（例：電子カルテ連携）",
        "Purpose (e.g. EHR link)",
    ),
    (
        "admin.token_scope_export",
        "印刷・証拠一式の出力も許可する（export）",
        "Also allow printing and exporting bundles (export)",
    ),
    (
        "admin.token_scope_hint",
        "トークンは有効期間（既定 90 日、最長 397 日）が過ぎると使えなくなります。非常時アクセス（break-glass）はトークンでは開始できません。",
        "A token stops working when its period ends (90 days by default, at most 397). Break-glass access can never be started with a token.",
    ),
    (
        "admin.proposal_made",
        "この変更は、別の管理者の承認を待っています（自分の職種の変更、または管理職種への診療記録の権限の追加は、一人では決められません）",
        "This change waits for another administrator's approval (one administrator alone cannot change their own role or give an administrative role rights on patients' records)",
    ),
    (
        "admin.proposals",
        "承認待ちの職種・権限の変更",
        "Role changes awaiting approval",
    ),
    (
        "admin.proposals_help",
        "申請した本人以外の管理者が承認すると反映されます。申請者は取り下げられます。",
        "A change takes effect when an administrator other than its proposer approves it. The proposer may withdraw it.",
    ),
    ("admin.proposal_by", "申請者", "Proposed by"),
    ("admin.proposal_state", "状態", "State"),
    (
        "admin.proposal_approve",
        "承認して反映",
        "Approve and apply",
    ),
    ("admin.proposal_reject", "却下", "Reject"),
    ("admin.proposal_withdraw", "取り下げ", "Withdraw"),
    ("admin.proposal_approved", "承認済み", "Approved"),
    (
        "admin.proposal_rejected",
        "却下・取り下げ",
        "Rejected or withdrawn",
    ),
    (
        "admin.proposal_own_role",
        "申請者自身の職種",
        "The proposer's own role",
    ),
    (
        "admin.proposal_clinical",
        "管理職種への診療記録の権限の追加",
        "Rights on patients' records for an administrative role",
    ),
    ("admin.token_days", "有効日数", "Valid for (days)"),
    ("admin.token_issue", "発行する", "Issue"),
    ("admin.saved", "保存しました", "Saved"),
    (
        "admin.roles_help",
        "職種ごとに、記録の種別ごとの権限を設定します。変更は監査ログに記録されます。",
        "Set each role's rights per record kind. Changes are recorded in the audit trail.",
    ),
    ("admin.new_role", "職種の追加", "Add a role"),
    ("admin.grants", "権限", "Rights"),
    ("admin.builtin", "標準", "built-in"),
    ("admin.code", "コード", "Code"),
    (
        "admin.code_help",
        "英小文字・数字・_ で40文字以内。後から変更できません。",
        "Lower-case letters, digits, _; up to 40. Cannot be changed later.",
    ),
    ("admin.name_ja", "名称（日本語）", "Name (Japanese)"),
    ("admin.name_en", "名称（英語）", "Name (English)"),
    (
        "admin.per_kind",
        "記録の種別ごとの権限",
        "Rights per record kind",
    ),
    ("admin.action", "操作", "Action"),
    ("admin.all_kinds", "全種別", "All kinds"),
    (
        "admin.facility_wide",
        "施設全体の権限",
        "Facility-wide rights",
    ),
    (
        "admin.kinds_help",
        "保存期間は延ばせますが、短くはできません（法定保存期間を守るため）。",
        "Retention can be lengthened, never shortened (statutory retention).",
    ),
    ("admin.retention", "保存期間（年）", "Retention (years)"),
    ("admin.new_kind", "種別の追加", "Add a kind"),
    ("admin.add", "追加する", "Add"),
    ("audit.search", "監査ログの検索", "Search the audit trail"),
    ("audit.counts", "患者ごとの閲覧回数", "Accesses per patient"),
    ("audit.ledger", "台帳の検証", "Ledger integrity"),
    ("audit.staff", "職員", "Staff member"),
    ("audit.everyone", "全員", "Everyone"),
    ("audit.all_actions", "すべての操作", "All actions"),
    ("audit.from", "期間（開始日）", "From (date)"),
    ("audit.to", "期間（終了日）", "To (date, inclusive)"),
    (
        "audit.off_hours_only",
        "時間外（平日8時前・19時以降、土日）のみ",
        "Only outside working hours (before 08:00, after 19:00, weekends)",
    ),
    ("audit.off_hours", "時間外", "Off hours"),
    ("audit.csv", "CSVで出力", "Export CSV"),
    (
        "audit.help",
        "検索と出力そのものも監査ログに記録されます。CSVは最大10,000件です。",
        "Searches and exports are themselves recorded. CSV holds up to 10,000 rows.",
    ),
    ("audit.latest", "最新の記録", "Latest entries"),
    (
        "audit.none",
        "該当する記録はありません。",
        "Nothing matches.",
    ),
    ("audit.time", "日時", "Time"),
    ("audit.outcome", "結果", "Outcome"),
    ("audit.record", "記録 / 版", "Record / version"),
    ("audit.client", "接続元", "Client"),
    ("audit.index", "台帳番号", "Ledger index"),
    ("audit.older", "さらに古い記録", "Older entries"),
    ("audit.outcome_ok", "成功", "OK"),
    ("audit.outcome_denied", "拒否", "Denied"),
    ("audit.outcome_failed", "失敗", "Failed"),
    (
        "audit.counts_help",
        "期間中に各患者の記録を誰が何回開いたかを示します。担当外の閲覧がないか確認してください。",
        "Who opened each patient's records, and how often, in the period. Look for access outside a person's care.",
    ),
    ("audit.optional", "任意", "optional"),
    ("audit.show", "表示", "Show"),
    ("audit.total", "合計", "Total"),
    ("audit.by_staff", "職員別", "By staff member"),
    ("audit.verification", "改ざん検証", "Integrity verification"),
    (
        "audit.verify_ok",
        "最後の検証では、台帳・記録・添付ファイルに改ざんは見つかりませんでした。",
        "The last verification found the ledger, records and attachments intact.",
    ),
    (
        "audit.verify_bad",
        "最後の検証で問題が見つかりました。安全管理責任者に連絡し、下の内容を確認してください。",
        "The last verification found problems. Tell the security officer and review them below.",
    ),
    ("audit.verified_at", "検証日時", "Verified at"),
    ("audit.scheduled", "自動", "scheduled"),
    ("audit.entries", "台帳の項目数", "Ledger entries"),
    ("audit.versions", "記録の版", "Record versions"),
    ("audit.blobs", "添付・本文ファイル", "Stored files"),
    ("audit.problems", "問題の数", "Problems"),
    (
        "audit.never_verified",
        "まだ検証されていません。",
        "Not verified yet.",
    ),
    (
        "audit.verify_stale",
        "最後の検証から24時間以上たっています。",
        "More than 24 hours since the last verification.",
    ),
    ("audit.verify_now", "今すぐ検証する", "Verify now"),
    (
        "audit.verify_help",
        "すべての記録と台帳の項目を読み直し、ハッシュと署名付きチェックポイントを照合します（mamori verify と同じ）。結果は台帳に記録されます。",
        "Re-reads every record and ledger entry and checks hashes and signed checkpoints (as mamori verify does). The result is recorded.",
    ),
    (
        "audit.checkpoint",
        "署名付きチェックポイント",
        "Signed checkpoint",
    ),
    ("audit.created", "作成日時", "Created"),
    ("audit.size", "台帳の大きさ", "Ledger size"),
    ("audit.root", "ルートハッシュ", "Root hash"),
    ("audit.verifier_key", "検証鍵", "Verifier key"),
    (
        "audit.signed_note",
        "署名付きノート（外部保管用）",
        "Signed note (to keep elsewhere)",
    ),
    (
        "audit.no_checkpoint",
        "チェックポイントはまだありません。",
        "No checkpoint yet.",
    ),
    (
        "audit.checkpoint_now",
        "チェックポイントを作成する",
        "Sign a checkpoint now",
    ),
    (
        "audit.checkpoint_help",
        "チェックポイントを印刷や別の場所に保管しておくと、後から台帳が書き換えられていないことを第三者が確認できます。",
        "Keep a checkpoint elsewhere (printed, another system) so that anyone can later check the ledger was not rewritten.",
    ),
    (
        "idle.warning",
        "しばらく操作がないため、まもなく自動的にログアウトします。入力中の内容は保持されます。",
        "You will be signed out soon for inactivity. What you are typing will be kept.",
    ),
    ("idle.continue", "作業を続ける", "Keep working"),
    (
        "idle.restored",
        "入力中の内容を復元しました。内容を確かめてから保存してください（添付ファイルは選び直してください）。",
        "What you were typing has been restored. Check it, then save (choose attachments again).",
    ),
    (
        "idle.resume_login",
        "一定時間操作がなかったため、ログアウトしました。もう一度ログインすると、入力中の内容を復元します。",
        "You were signed out for inactivity. Sign in again to get back what you were typing.",
    ),
    ("nav.skip", "本文へ移動", "Skip to content"),
    (
        "patient.new_record",
        "新しい記録を書く",
        "Write a new record",
    ),
    ("record.edit_draft", "下書きを編集", "Edit draft"),
    (
        "record.amend",
        "修正する（新しい版）",
        "Amend (new version)",
    ),
    ("record.print", "印刷用表示", "Print view"),
    ("record.compare", "版の比較", "Compare versions"),
    (
        "record.reject_reason",
        "差し戻しの理由",
        "Reason for returning",
    ),
    ("record.reject", "差し戻す", "Return to the enterer"),
    (
        "record.eie_open",
        "誤記入として記録する",
        "Mark as entered in error",
    ),
    (
        "record.eie_reason",
        "理由（必須。記録は削除されず、誤記入の版が追加されます）",
        "Reason (required; nothing is deleted, a version marking the error is added)",
    ),
    (
        "record.eie_button",
        "誤記入として記録",
        "Mark as entered in error",
    ),
    ("form.myself", "（自分）", "(myself)"),
    (
        "form.author_help",
        "ほかの人に代わって入力するときは、確定する責任者を選びます（代行入力）。責任者の承認で確定します。",
        "When entering on someone's behalf, choose the responsible author (proxy entry); it is finalised when they approve.",
    ),
    ("form.body", "本文", "Text"),
    (
        "form.attach",
        "添付ファイルを追加（PDF・JPEG・PNG・TIFF、1ファイルの上限）",
        "Add attachments (PDF, JPEG, PNG, TIFF; limit per file)",
    ),
    ("form.keep", "引き継ぐもの", "carried over"),
    ("form.required", "必須", "required"),
    ("form.new", "新しい記録", "New record"),
    ("form.edit", "下書きの編集", "Edit draft"),
    (
        "form.amend",
        "記録の修正（新しい版）",
        "Amend record (new version)",
    ),
    ("form.save_draft", "下書き保存", "Save draft"),
    ("form.finalise", "確定", "Finalise"),
    (
        "form.submit",
        "代行入力として承認を依頼",
        "Submit for the author's approval",
    ),
    ("form.save_amendment", "修正を保存", "Save amendment"),
    (
        "form.choose_again",
        "（添付ファイルはもう一度選んでください）",
        " (choose the attachments again)",
    ),
    ("act.finalise", "確定する", "Finalise"),
    ("act.submit", "承認を依頼する", "Submit for approval"),
    ("act.approve", "承認して確定する", "Approve and finalise"),
    ("diff.from", "比較元の版", "From version"),
    ("diff.to", "比較先の版", "To version"),
    ("diff.compare", "比較", "Compare"),
    (
        "diff.caption",
        "左が前の版、右が後の版です（削除は「−」、追加は「＋」）。",
        "Left: earlier version; right: later (− removed, + added).",
    ),
    ("print.patient", "患者", "Patient"),
    ("print.printed", "出力", "Printed"),
    (
        "print.recorded",
        "この出力は台帳に記録されています",
        "this printout is recorded in the ledger",
    ),
    ("state.draft", "下書き", "Draft"),
    ("state.pending", "承認待ち", "Awaiting approval"),
    ("state.finalised", "確定", "Finalised"),
    ("state.amendment", "確定（修正）", "Finalised (amendment)"),
    (
        "state.entered_in_error",
        "確定（誤記入）",
        "Finalised (entered in error)",
    ),
    ("status.draft", "下書き", "Draft"),
    ("status.pending_approval", "承認待ち", "Awaiting approval"),
    ("status.finalised", "確定", "Finalised"),
    ("status.amended", "修正あり", "Amended"),
    ("status.entered_in_error", "誤記入", "Entered in error"),
    ("admin.hygiene", "点検", "Review"),
    (
        "admin.hygiene_help",
        "定期的に確認してください：使われていないアカウント、パスワードの期限切れ、標準より広い権限を持つ職種。",
        "Review regularly: unused accounts, expired passwords, roles with more rights than their template.",
    ),
    ("admin.none_found", "該当なし", "None"),
    (
        "admin.expired_passwords",
        "パスワードの有効期限切れ",
        "Expired passwords",
    ),
    (
        "admin.broad_roles",
        "標準より広い権限を持つ職種",
        "Roles with more rights than their template",
    ),
    ("nav.account", "2要素認証", "Two-factor"),
    (
        "account.title",
        "2要素認証（認証アプリ）",
        "Two-factor authentication (authenticator app)",
    ),
    ("account.code_title", "確認コードの入力", "Enter your code"),
    (
        "account.code_lead",
        "パスワードは確認できました。認証アプリに表示されている6桁の確認コードを入力してください。",
        "Your password is right. Enter the 6-digit code shown in your authenticator app.",
    ),
    ("account.code", "確認コード", "Code"),
    (
        "account.code_help",
        "スマートフォンをなくした場合は、回復コード（xxxx-xxxx-xxxx）を入力できます。どちらもない場合はシステム管理者に連絡してください。",
        "Lost your phone? Enter a recovery code (xxxx-xxxx-xxxx). If you have neither, ask your system administrator.",
    ),
    ("account.verify", "確認してログイン", "Verify and sign in"),
    ("account.state", "状態", "Status"),
    ("account.enabled", "設定済み", "On"),
    ("account.not_enabled", "未設定", "Off"),
    ("account.policy", "この職種の方針", "Your role's policy"),
    ("account.required", "必須", "Required"),
    (
        "account.recommended",
        "推奨（ガイドラインは医療情報を扱うシステムに2要素認証を求めています）",
        "Recommended (the guideline expects two factors for systems holding medical information)",
    ),
    (
        "account.codes_left",
        "残りの回復コード",
        "Recovery codes left",
    ),
    ("account.recovery_codes", "回復コード", "Recovery codes"),
    (
        "account.recovery_help",
        "この回復コードは今だけ表示されます。印刷するか書き写して、スマートフォンとは別の安全な場所に保管してください。各コードは1回だけ使えます。",
        "These recovery codes are shown only now. Print or copy them and keep them safe, away from your phone. Each works once.",
    ),
    ("account.continue", "続ける", "Continue"),
    (
        "account.enrol",
        "認証アプリの登録",
        "Set up your authenticator app",
    ),
    (
        "account.step_scan",
        "認証アプリ（Google Authenticator、Microsoft Authenticator など）でこのQRコードを読み取ります。読み取れない場合は下の文字列を入力します。",
        "Scan this QR code with an authenticator app (Google Authenticator, Microsoft Authenticator, …), or type the text below.",
    ),
    (
        "account.step_code",
        "アプリに表示された6桁のコードを入力して確定します。",
        "Enter the 6-digit code the app shows to finish.",
    ),
    (
        "account.qr_alt",
        "認証アプリ登録用のQRコード",
        "QR code for the authenticator app",
    ),
    ("account.secret", "手入力用の文字列", "Text to type instead"),
    ("account.confirm", "登録を確定する", "Finish set-up"),
    (
        "account.why",
        "パスワードに加えて、スマートフォンの認証アプリのコードでログインするようにします。パスワードが漏れても、なりすましを防げます。",
        "Sign in with a code from your phone's authenticator app as well as your password, so that a leaked password is not enough.",
    ),
    ("account.begin", "登録を始める", "Set up"),
    ("account.remove", "2要素認証の解除", "Turn off two-factor"),
    ("account.remove_button", "解除する", "Turn off"),
    (
        "account.2fa_required_notice",
        "この職種では2要素認証が必須です。登録すると利用を始められます。",
        "Your role requires two-factor authentication. Set it up to continue.",
    ),
    (
        "account.2fa_enabled",
        "2要素認証を設定しました。次回から確認コードが必要です。",
        "Two-factor authentication is on. You will need a code from now on.",
    ),
    (
        "account.2fa_removed",
        "2要素認証を解除しました。",
        "Two-factor authentication is off.",
    ),
    ("admin.reset_2fa", "2要素認証のリセット", "Reset two-factor"),
    (
        "admin.reset_2fa_help",
        "スマートフォンをなくした場合などに、本人確認のうえでリセットします。本人は次のログインで登録し直します。",
        "When someone lost their phone: check who they are, then reset; they set it up again at next sign-in.",
    ),
    ("admin.reset_2fa_button", "リセットする", "Reset"),
    (
        "admin.two_factor",
        "2要素認証を必須にする（推奨）",
        "Require two-factor authentication (recommended)",
    ),
    (
        "emergency.open",
        "非常時アクセス（break-glass）",
        "Emergency access (break-glass)",
    ),
    (
        "emergency.help",
        "救急などで、通常の権限では見られないこの患者の記録を、期限付きで閲覧します。理由を記入してください。すべての操作が記録され、安全管理担当者に直ちに通知されて、後で確認されます。",
        "In an emergency, read this patient's records beyond your usual rights for a limited time. Give the reason. Everything is recorded, the security officers are told at once and will review it.",
    ),
    ("emergency.reason", "理由", "Reason"),
    (
        "emergency.start",
        "非常時アクセスを開始する",
        "Start emergency access",
    ),
    (
        "emergency.banner",
        "非常時アクセス中：すべての操作が記録され、確認されます。患者",
        "EMERGENCY ACCESS: everything is recorded and will be reviewed. Patient",
    ),
    ("emergency.until", "終了予定", "until"),
    ("emergency.end", "終了する", "End now"),
    (
        "emergency.queue",
        "非常時アクセスの確認",
        "Emergency access review",
    ),
    (
        "emergency.queue_help",
        "非常時アクセスの一件ごとに、理由と期間中の操作を確認し、結果を記入して完了してください。",
        "Review each emergency access — its reason and what was done — and close it with your finding.",
    ),
    (
        "emergency.open_only",
        "確認待ちのみ表示",
        "Only those awaiting review",
    ),
    ("emergency.show_all", "確認済みも表示", "Include reviewed"),
    (
        "emergency.none",
        "確認待ちの非常時アクセスはありません。",
        "Nothing awaits review.",
    ),
    ("emergency.active", "実施中", "active"),
    ("emergency.period", "期間", "Period"),
    (
        "emergency.events",
        "期間中の操作（台帳の件数）",
        "Actions in the period (ledger entries)",
    ),
    ("emergency.review", "確認結果", "Review"),
    ("emergency.comment", "確認結果", "Finding"),
    ("emergency.close", "確認を完了する", "Close review"),
    (
        "home.emergency_pending",
        "確認待ちの非常時アクセスがあります",
        "Emergency accesses await your review",
    ),
    ("admin.maintenance", "保守作業", "Maintenance work"),
    (
        "maint.help",
        "保守要員（ベンダーの技術者）は、ここで承認した作業時間の中でだけログインできます。作業中の操作はすべて台帳に記録され、作業後に報告を確認します。",
        "Maintenance engineers can sign in only inside a window approved here. Everything they do is in the ledger; review the report afterwards.",
    ),
    (
        "maint.none",
        "保守作業の申請はまだありません。",
        "No maintenance work yet.",
    ),
    ("maint.engineer", "保守要員", "Engineer"),
    ("maint.period", "作業時間", "Window"),
    ("maint.purpose", "作業の目的・内容", "Purpose and work"),
    (
        "maint.personal_info",
        "個人情報の取扱い",
        "Personal information",
    ),
    (
        "maint.personal_info_label",
        "作業で患者の個人情報に触れる可能性がある",
        "The work may touch patients' personal information",
    ),
    ("maint.yes", "あり", "Yes"),
    ("maint.no", "なし", "No"),
    ("maint.approve", "承認", "Approve"),
    ("maint.reject", "却下", "Reject"),
    ("maint.report", "作業報告", "Work report"),
    ("maint.new", "作業申請の登録", "Record a work request"),
    (
        "maint.no_engineers",
        "保守要員のアカウントがありません。アカウントの追加で職種「保守要員」の個人アカウントを作成してください。",
        "No maintenance engineer accounts. Create a personal account with the role 保守要員 first.",
    ),
    ("maint.starts", "開始日時", "Starts"),
    ("maint.ends", "終了日時", "Ends"),
    ("maint.submit", "申請を登録する", "Record the request"),
    ("maint.requested", "承認待ち", "Awaiting approval"),
    ("maint.rejected", "却下", "Rejected"),
    (
        "maint.approved",
        "承認済み（開始前）",
        "Approved (not started)",
    ),
    ("maint.open", "作業中", "In progress"),
    (
        "maint.ended",
        "終了（報告の確認待ち）",
        "Ended (report to review)",
    ),
    ("maint.acknowledged", "報告確認済み", "Report acknowledged"),
    (
        "maint.not_final",
        "作業時間中のため、この報告はまだ確定していません。",
        "The window is still open; this report is not final.",
    ),
    ("maint.worked", "実際の作業", "Activity"),
    (
        "maint.no_activity",
        "操作の記録はありません",
        "No activity recorded",
    ),
    ("maint.entries", "台帳の件数", "Ledger entries"),
    ("maint.patients", "触れた患者", "Patients touched"),
    (
        "maint.no_patients",
        "患者の記録には触れていません。",
        "No patient's records were touched.",
    ),
    (
        "maint.actions",
        "操作の記録（時刻順）",
        "Actions (in time order)",
    ),
    ("maint.ack", "報告の確認", "Acknowledge the report"),
    (
        "maint.ack_button",
        "確認を記録する",
        "Record acknowledgement",
    ),
    (
        "maint.ack_later",
        "作業時間が終わると、報告を確認できます。",
        "You can acknowledge the report when the window has ended.",
    ),
    (
        "time.warning",
        "サーバーの時刻が信頼できません。",
        "The server's clock is not trusted.",
    ),
    ("time.title", "時刻の同期", "Clock synchronisation"),
    ("time.problem", "問題", "Problem"),
    (
        "time.ok",
        "サーバーの時刻は標準時刻と同期しています。",
        "The server's clock is synchronised with standard time.",
    ),
    (
        "time.bad",
        "サーバーの時刻が信頼できません。この間の台帳の記録には印が付きます。",
        "The server's clock is not trusted; ledger entries written meanwhile are marked.",
    ),
    ("time.checked", "確認日時", "Checked"),
    ("time.source", "確認先", "Source"),
    ("time.offset", "ずれ", "Offset"),
    ("time.kernel", "OS の同期状態", "Kernel synchronised"),
    ("time.yes", "同期", "yes"),
    ("time.no", "非同期", "no"),
    (
        "time.unchecked",
        "まだ確認していません。",
        "Not checked yet.",
    ),
    (
        "time.help",
        "time.ntp_servers に施設の NTP サーバー（例：ntp.nict.jp）を設定すると、定期的にずれを測ります。状態は署名付きチェックポイントにも記録されます。",
        "Set time.ntp_servers (e.g. ntp.nict.jp) to measure the offset regularly. The state is also recorded in every signed checkpoint.",
    ),
    ("nav.lock", "画面ロック", "Lock screen"),
    ("lock.title", "画面はロックされています", "Screen locked"),
    (
        "lock.lead",
        "続けるには、パスワードを入力してください。",
        "Enter your password to continue.",
    ),
    (
        "lock.draft_kept",
        "入力中の内容は保持されています。ロックを解除すると、続きから書けます。",
        "What you were typing is kept; unlock to carry on.",
    ),
    ("lock.unlock", "ロックを解除", "Unlock"),
    (
        "lock.other_person",
        "別の人が使う場合は、ログアウトしてからログインし直してください。",
        "Someone else? Sign out, then sign in as yourself.",
    ),
    (
        "idle.warning_lock",
        "しばらく操作がないため、まもなく画面をロックします。入力中の内容は保持されます。",
        "The screen will lock soon for inactivity. What you are typing will be kept.",
    ),
    ("admin.certificates", "証明書", "Certificates"),
    (
        "cert.help",
        "施設の認証局が、端末（受付PC・電子カルテ端末など）と職員にクライアント証明書を発行します。サーバーを --client-cert required で起動すると、有効な証明書のない接続は拒否されます。紛失・退職のときはすぐに失効させてください（次の接続から拒否されます）。",
        "The facility CA issues client certificates to devices and staff. With serve --client-cert required, connections without a valid certificate are refused. Revoke at once when a device is lost or someone leaves (refused from the next connection).",
    ),
    ("cert.ca", "CA 証明書（PEM）", "CA certificate (PEM)"),
    ("cert.crl", "失効リスト（CRL）", "Revocation list (CRL)"),
    (
        "cert.none",
        "発行した証明書はまだありません。",
        "No certificates issued yet.",
    ),
    ("cert.subject", "名前", "Name"),
    ("cert.kind", "種類", "Kind"),
    ("cert.serial", "シリアル番号", "Serial"),
    ("cert.expires", "有効期限", "Expires"),
    ("cert.revoked", "失効", "Revoked"),
    ("cert.reason", "失効の理由", "Reason"),
    ("cert.revoke", "失効させる", "Revoke"),
    ("cert.device", "端末", "Device"),
    ("cert.user", "職員", "Staff member"),
    ("cert.issue", "証明書の発行", "Issue a certificate"),
    (
        "cert.name",
        "端末名または職員のログインID",
        "Device name or staff login ID",
    ),
    (
        "cert.name_help",
        "英数字と . _ - で64文字以内（例：reception-pc-1）。",
        "Letters, digits, . _ -; up to 64 (e.g. reception-pc-1).",
    ),
    (
        "cert.device_id",
        "端末の識別子（シリアル番号・MAC アドレスなど、任意）",
        "Device identifier (serial, MAC address; optional)",
    ),
    ("cert.days", "有効日数", "Valid for (days)"),
    (
        "cert.password",
        "証明書ファイルのパスワード",
        "Password for the certificate file",
    ),
    (
        "cert.password_help",
        "8文字以上。端末に取り込むときに使います。ファイルとは別の方法で伝えてください。",
        "At least 8 characters; needed to install the file. Pass it on separately from the file.",
    ),
    (
        "cert.issue_button",
        "発行してダウンロード",
        "Issue and download",
    ),
    (
        "emergency.account_banner",
        "非常用アカウントでログイン中：すべての操作が記録され、確認されます",
        "SIGNED IN WITH AN EMERGENCY ACCOUNT: everything is recorded and will be reviewed",
    ),
    (
        "emergency.account_use",
        "非常用アカウントでのログイン",
        "Sign-in with an emergency account",
    ),
    (
        "emergency.account_title",
        "非常用アカウント",
        "Emergency account",
    ),
    (
        "emergency.account_help",
        "封筒などで保管しておき、非常時にだけ使うアカウントです。使うと直ちに通知され、確認待ちになります。一度使うと、パスワードを再設定するまで再び使えません。",
        "Kept sealed (e.g. in an envelope) for emergencies. Each use is announced at once and queued for review; after one use it works again only once its password is reset.",
    ),
    (
        "emergency.account_armed",
        "非常用アカウント（未使用・使用可能）",
        "Emergency account (unused, ready)",
    ),
    (
        "emergency.account_used",
        "使用済み（パスワードの再設定が必要）",
        "Used (password reset needed)",
    ),
    (
        "emergency.account_not",
        "通常のアカウント",
        "An ordinary account",
    ),
    (
        "emergency.account_set",
        "非常用アカウントに指定する",
        "Make this an emergency account",
    ),
    (
        "emergency.account_unset",
        "非常用アカウントの指定を外す",
        "Make this an ordinary account",
    ),
    ("error.title", "エラー", "Error"),
    ("error.back", "戻る", "Back"),
];

pub fn t(lang: Lang, key: &str) -> &'static str {
    MESSAGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, ja, en)| if lang == Lang::En { *en } else { *ja })
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_translated() {
        let mut keys: Vec<_> = MESSAGES.iter().map(|m| m.0).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate message key");
        for (k, ja, en) in MESSAGES {
            assert!(!ja.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(t(Lang::Ja, "login.title"), "ログイン");
        assert_eq!(t(Lang::En, "no.such.key"), "?");
        assert_eq!(t(Lang::En, "login.title"), "Sign in");
    }

    fn has(key: &str) -> bool {
        MESSAGES.iter().any(|(k, _, _)| *k == key)
    }

    /// Every key the templates and handlers name is in the table (a missing one shows "?").
    #[test]
    fn every_key_in_use_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        for dir in ["templates", "src"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                sources.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
        let mut checked = 0;
        for (path, text) in &sources {
            for pattern in ["t.get(\"", "t(lang, \"", "msg(\"", "t(lang_of(headers), \""] {
                for part in text.split(pattern).skip(1) {
                    let key = &part[..part.find('"').unwrap()];
                    assert!(has(key), "{}: no message '{key}'", path.display());
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 150,
            "only {checked} keys found: is the scan still right?"
        );
        for s in [
            "draft",
            "pending_approval",
            "finalised",
            "amended",
            "entered_in_error",
        ] {
            assert!(has(&format!("status.{s}")), "status.{s}");
        }
        for a in ["finalise", "submit", "approve"] {
            assert!(has(&format!("act.{a}")), "act.{a}");
        }
    }
}

/// An error as the person reading the page needs it: the service's Japanese message as is,
/// or in English a sentence for the error's code followed by the original in brackets (the
/// detail — which field, which limit — is in the service's words).
/// An error for people: the specific (Japanese) message; in English the code's meaning
/// first, with that message beside it.
pub fn error_text(lang: Lang, code: mamori_service::ErrorCode, message: &str) -> String {
    if lang == Lang::Ja {
        return message.to_owned();
    }
    format!("{} ({message})", code.en())
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use mamori_service::ErrorCode;

    #[test]
    fn errors_keep_the_detail_in_english() {
        assert_eq!(
            error_text(Lang::Ja, ErrorCode::Forbidden, "権限がありません"),
            "権限がありません"
        );
        assert_eq!(
            error_text(Lang::En, ErrorCode::Forbidden, "権限がありません"),
            "Your role does not allow this. (権限がありません)"
        );
    }
}
