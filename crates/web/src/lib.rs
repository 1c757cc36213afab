//! mamori's HTTP adapter: the JSON API under `/api/v1`, security headers, and the server loop.

pub mod api;
pub mod conn;
pub mod error;
pub mod extract;
pub mod headers;
pub mod i18n;
pub mod openapi;
pub mod tls;
pub mod ui;

use mamori_service::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post, put};
use mamori_service::Service;

/// One API route: the table both the router and the OpenAPI document are built from.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub op: &'static str,
    pub summary: &'static str,
    /// Reachable without authentication.
    pub public: bool,
}

const fn r(
    method: &'static str,
    path: &'static str,
    op: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        op,
        summary,
        public: false,
    }
}

const fn public(
    method: &'static str,
    path: &'static str,
    op: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        op,
        summary,
        public: true,
    }
}

pub const ROUTES: &[Route] = &[
    public(
        "POST",
        "/auth/login",
        "login",
        "ログイン（トークンを返し、セッション Cookie を設定）",
    ),
    public(
        "POST",
        "/auth/password",
        "changePassword",
        "自分のパスワード変更（初回ログイン時の変更を含む）",
    ),
    r("POST", "/auth/logout", "logout", "ログアウト"),
    r("GET", "/auth/me", "me", "ログイン中の利用者"),
    r(
        "GET",
        "/time",
        "clockStatus",
        "時刻同期の状態（NTP とのずれ、カーネルの同期状態）",
    ),
    r(
        "GET",
        "/auth/second-factor",
        "secondFactorStatus",
        "2要素認証の設定状況（2要素目を待つセッションでも可）",
    ),
    r(
        "POST",
        "/auth/second-factor",
        "completeSecondFactor",
        "ログインの2段階目：認証アプリの確認コードまたは回復コード",
    ),
    r(
        "POST",
        "/auth/second-factor/passkey/options",
        "passkeyAssertionOptions",
        "2要素認証: パスキーでの確認の開始（navigator.credentials.get の options）",
    ),
    r(
        "POST",
        "/auth/second-factor/passkey",
        "completePasskey",
        "2要素認証: パスキーの応答で確認",
    ),
    r(
        "POST",
        "/auth/passkeys/options",
        "passkeyRegistrationOptions",
        "パスキー登録の開始（navigator.credentials.create の options）",
    ),
    r(
        "POST",
        "/auth/passkeys",
        "registerPasskey",
        "パスキーの登録（最初の2要素なら回復コードを返す）",
    ),
    r(
        "GET",
        "/auth/passkeys",
        "listPasskeys",
        "自分のパスキーの一覧",
    ),
    r(
        "POST",
        "/auth/passkeys/{id}/remove",
        "removePasskey",
        "自分のパスキーの削除",
    ),
    r(
        "POST",
        "/auth/totp/begin",
        "beginTotp",
        "TOTP の登録開始（秘密鍵と otpauth URI を返す）",
    ),
    r(
        "POST",
        "/auth/totp/confirm",
        "confirmTotp",
        "TOTP の登録確定（最初の確認コード。回復コードを一度だけ返す）",
    ),
    r(
        "POST",
        "/auth/totp/remove",
        "removeTotp",
        "自分の TOTP の解除（パスワードが必要。必須の職種では不可）",
    ),
    r("POST", "/users", "createUser", "アカウント作成"),
    r("GET", "/users", "listUsers", "アカウント一覧"),
    r(
        "GET",
        "/users/unused",
        "unusedUsers",
        "一定期間使われていないアカウント",
    ),
    r(
        "GET",
        "/users/hygiene",
        "accountHygiene",
        "アカウントの点検（未使用・パスワード期限切れ・標準より広い職種）",
    ),
    public(
        "GET",
        "/ca/certificate",
        "caCertificate",
        "施設認証局の証明書（PEM）",
    ),
    public(
        "GET",
        "/ca/crl",
        "caCrl",
        "施設認証局の失効リスト（CRL, PEM、取得のたびに署名）",
    ),
    r(
        "GET",
        "/certificates",
        "listCertificates",
        "クライアント証明書の一覧",
    ),
    r(
        "POST",
        "/certificates",
        "issueCertificate",
        "クライアント証明書の発行（端末または職員、PKCS#12 を base64 で返す）",
    ),
    r(
        "POST",
        "/certificates/{serial}/revoke",
        "revokeCertificate",
        "クライアント証明書の失効（次の接続から拒否、CRL に掲載）",
    ),
    r(
        "GET",
        "/maintenance",
        "maintenanceWindows",
        "保守作業（作業申請・承認・報告確認）の一覧",
    ),
    r(
        "POST",
        "/maintenance",
        "requestMaintenance",
        "保守作業の申請（保守要員・日時・目的・個人情報の取扱いの有無）",
    ),
    r(
        "POST",
        "/maintenance/{id}/approve",
        "approveMaintenance",
        "保守作業の承認（承認した時間内だけ保守要員がログインできる）",
    ),
    r(
        "POST",
        "/maintenance/{id}/reject",
        "rejectMaintenance",
        "保守作業の却下",
    ),
    r(
        "GET",
        "/maintenance/{id}/report",
        "maintenanceReport",
        "保守作業の報告（操作・触れた患者・時刻）",
    ),
    r(
        "POST",
        "/maintenance/{id}/acknowledge",
        "acknowledgeMaintenance",
        "保守作業報告の確認（コメント必須、作業終了後）",
    ),
    r(
        "POST",
        "/patients/{id}/emergency",
        "startEmergency",
        "非常時アクセス（break-glass）の開始：理由を付けて、一人の患者の記録を期限付きで閲覧",
    ),
    r(
        "POST",
        "/emergency/{id}/end",
        "endEmergency",
        "自分の非常時アクセスを期限前に終了",
    ),
    r(
        "GET",
        "/emergency",
        "emergencyQueue",
        "非常時アクセスの確認待ち一覧（all=1 で確認済みも）",
    ),
    r(
        "POST",
        "/emergency/{id}/review",
        "reviewEmergency",
        "非常時アクセスの確認（コメント必須）",
    ),
    r(
        "POST",
        "/users/{id}/reset-second-factor",
        "resetSecondFactor",
        "2要素認証のリセット（本人確認の方法を記録）",
    ),
    r(
        "POST",
        "/roles/{code}/two-factor",
        "setRoleTwoFactor",
        "職種ごとの2要素認証の必須設定",
    ),
    r(
        "POST",
        "/roles/{code}/client-cert",
        "setRoleClientCert",
        "職種ごとのクライアント証明書必須の設定",
    ),
    r(
        "POST",
        "/users/{id}/disable",
        "disableUser",
        "アカウントの無効化（削除はしない）",
    ),
    r(
        "POST",
        "/users/{id}/enable",
        "enableUser",
        "アカウントの再有効化",
    ),
    r("POST", "/users/{id}/unlock", "unlockUser", "ロック解除"),
    r(
        "POST",
        "/users/{id}/reset-password",
        "resetPassword",
        "パスワード再設定（本人確認方法を記録）",
    ),
    r(
        "POST",
        "/users/{id}/role",
        "setRole",
        "職種（ロール）の変更",
    ),
    r(
        "POST",
        "/users/{id}/tokens",
        "issueToken",
        "サービスアカウントの API トークン発行",
    ),
    r(
        "POST",
        "/tokens/revoke",
        "revokeToken",
        "API トークンの失効",
    ),
    r("GET", "/roles", "listRoles", "職種（ロール）と権限の一覧"),
    r(
        "POST",
        "/roles",
        "saveRole",
        "職種（ロール）の作成・変更（自分の職種の変更と管理職種への診療記録の権限は、別の管理者の承認待ち: 202）",
    ),
    r(
        "GET",
        "/roles/proposals",
        "listRoleProposals",
        "承認待ち（と最近決まった）職種の変更の申請",
    ),
    r(
        "POST",
        "/roles/proposals/{id}/approve",
        "approveRoleProposal",
        "職種の変更の承認（申請者以外の管理者）",
    ),
    r(
        "POST",
        "/roles/proposals/{id}/reject",
        "rejectRoleProposal",
        "職種の変更の却下（申請者は取り下げ）",
    ),
    r(
        "GET",
        "/record-kinds",
        "listRecordKinds",
        "記録種別と保存期間",
    ),
    r(
        "POST",
        "/record-kinds",
        "saveRecordKind",
        "記録種別の作成・変更",
    ),
    r("POST", "/patients", "createPatient", "患者登録"),
    r(
        "GET",
        "/patients",
        "searchPatients",
        "患者検索（ID・フリガナ）",
    ),
    r("GET", "/patients/{id}", "getPatient", "患者の基本情報"),
    r(
        "GET",
        "/patients/{id}/records",
        "patientRecords",
        "患者の記録一覧",
    ),
    r(
        "POST",
        "/records",
        "createRecord",
        "記録の作成（下書き。代行入力は author_id を指定）",
    ),
    r("GET", "/records/{id}", "getRecord", "記録の閲覧"),
    r(
        "GET",
        "/records/{id}/versions",
        "recordVersions",
        "記録の全版（更新履歴）",
    ),
    r(
        "GET",
        "/records/{id}/diff",
        "diffVersions",
        "二つの版の比較",
    ),
    r(
        "PUT",
        "/records/{id}/draft",
        "updateDraft",
        "下書きの更新（入力者本人のみ）",
    ),
    r(
        "POST",
        "/records/{id}/submit",
        "submitRecord",
        "代行入力の承認依頼",
    ),
    r("POST", "/records/{id}/finalize", "finalizeRecord", "確定"),
    r(
        "POST",
        "/records/{id}/approve",
        "approveRecord",
        "代行入力の承認（確定）",
    ),
    r(
        "POST",
        "/records/{id}/reject",
        "rejectRecord",
        "代行入力の差し戻し（理由必須）",
    ),
    r(
        "POST",
        "/records/{id}/amend",
        "amendRecord",
        "確定済み記録の修正（新しい版、理由必須）",
    ),
    r(
        "POST",
        "/records/{id}/entered-in-error",
        "markEnteredInError",
        "誤記入の表示（新しい版、理由必須）",
    ),
    r(
        "GET",
        "/records/{id}/attachments/{sha256}",
        "getAttachment",
        "添付ファイル",
    ),
    r(
        "GET",
        "/records/{id}/print",
        "printRecord",
        "印刷・出力用の内容（出力として記録）",
    ),
    r(
        "GET",
        "/approvals",
        "pendingApprovals",
        "自分の承認待ちの代行入力",
    ),
    r("GET", "/audit/events", "auditEvents", "監査ログの検索"),
    r(
        "GET",
        "/audit/patient-access-counts",
        "patientAccessCounts",
        "患者ごとのカルテ閲覧回数と閲覧者",
    ),
    r(
        "GET",
        "/backup/status",
        "backupStatus",
        "バックアップの状況（バックアップ先ごとの最終成功、オフライン保管、復元訓練、警告）",
    ),
    r(
        "POST",
        "/backup/run",
        "runBackup",
        "設定されたすべてのバックアップ先へ今すぐバックアップ（バックグラウンドで実行）",
    ),
    r(
        "POST",
        "/backup/drill",
        "runRestoreDrill",
        "復元訓練を今すぐ実行（最新のスナップショットを一時領域へ復元し検証）",
    ),
    r(
        "POST",
        "/backup/offline",
        "recordOfflineCopy",
        "最新のスナップショットをオフライン媒体へ保管し切り離したことの記録",
    ),
    r(
        "POST",
        "/backup/erase",
        "eraseBackupTarget",
        "バックアップ先の消去（全オブジェクトを削除し、消去記録を破棄台帳へ。確認のため名前の再入力が必要）",
    ),
    r(
        "GET",
        "/records/{id}/evidence",
        "recordEvidence",
        "記録の電子署名・タイムスタンプ・証拠記録の検証結果",
    ),
    r(
        "GET",
        "/records/{id}/bundle",
        "exportRecordBundle",
        "記録の証拠一式 (ZIP: 内容・添付・署名・タイムスタンプ・証拠記録・台帳の証明。OpenSSL だけで検証可能)",
    ),
    r(
        "GET",
        "/patients/{id}/bundle",
        "exportPatientBundle",
        "患者のすべての記録の証拠一式 (ZIP)",
    ),
    r(
        "POST",
        "/records/{id}/bundle/encrypted",
        "exportRecordBundleEncrypted",
        "持ち出し用に暗号化した証拠一式 (AES-256 の ZIP。7-Zip 等で開ける)。目的・承認者は持ち出し台帳に記録",
    ),
    r(
        "POST",
        "/patients/{id}/bundle/encrypted",
        "exportPatientBundleEncrypted",
        "患者のすべての記録を持ち出し用に暗号化した証拠一式 (持ち出し台帳に記録)",
    ),
    r(
        "POST",
        "/records/{id}/versions/{version}/signing",
        "beginExternalSignature",
        "外部署名（HPKI カード等）の開始: 作成責任者の証明書 (PEM) を渡し、署名すべき署名属性 (DER, base64) を受け取る",
    ),
    r(
        "POST",
        "/records/{id}/versions/{version}/signature",
        "completeExternalSignature",
        "外部署名の完了: 署名値 (base64) を渡すと、証明書で検証して CMS 署名を組み立て、タイムスタンプを付けて保存",
    ),
    r(
        "GET",
        "/evidence/status",
        "evidenceStatus",
        "電子署名・タイムスタンプ・証拠記録の状況と警告",
    ),
    r(
        "POST",
        "/evidence/seal",
        "sealEvidence",
        "未署名の確定版への署名、タイムスタンプの再試行、証拠記録の作成と更新を今すぐ実行",
    ),
    r(
        "GET",
        "/ledger/checkpoint",
        "ledgerCheckpoint",
        "台帳の最新の署名付きチェックポイント",
    ),
    r(
        "GET",
        "/ledger/proof/{index}",
        "ledgerProof",
        "台帳項目の包含証明 (RFC 6962)",
    ),
    r(
        "GET",
        "/compliance/catalogues",
        "listCatalogues",
        "自己点検の点検表（チェックリスト・ガイドライン）の一覧",
    ),
    r(
        "GET",
        "/compliance/assessments",
        "listAssessments",
        "自己点検の一覧（得点つき）",
    ),
    r(
        "POST",
        "/compliance/assessments",
        "createAssessment",
        "自己点検の開始（点検表と点検日）",
    ),
    r(
        "GET",
        "/compliance/assessments/{id}",
        "getAssessment",
        "自己点検の全項目（回答・観測か申告か・証跡・得点・次に行うこと）",
    ),
    r(
        "GET",
        "/compliance/assessments/{id}/report.pdf",
        "assessmentReportPdf",
        "立入検査用の自己点検結果（PDF）",
    ),
    r(
        "POST",
        "/compliance/assessments/{id}/items/{item}/answer",
        "answerItem",
        "項目への回答（観測と違う回答にはメモ必須、いいえには目標日）",
    ),
    r(
        "POST",
        "/compliance/assessments/{id}/items/{item}/evidence",
        "addItemEvidence",
        "項目への証跡（ファイルまたはリンク）の追加",
    ),
    r(
        "POST",
        "/compliance/assessments/{id}/close",
        "closeAssessment",
        "自己点検を締める（観測した回答を固定）",
    ),
    r("GET", "/compliance/assets", "listAssets", "機器台帳"),
    r(
        "POST",
        "/compliance/assets",
        "saveAsset",
        "機器の登録・更新（機器名で照合）",
    ),
    r(
        "POST",
        "/compliance/assets/import",
        "importAssets",
        "機器台帳の CSV 取り込み（全行か無し、行ごとのエラー）",
    ),
    r(
        "GET",
        "/compliance/assets.csv",
        "exportAssets",
        "機器台帳の CSV 出力（取り込みと同じ形式）",
    ),
    r("GET", "/compliance/risks", "listRisks", "リスク台帳"),
    r(
        "POST",
        "/compliance/risks",
        "saveRisk",
        "リスクの登録・更新",
    ),
    r(
        "GET",
        "/compliance/contacts",
        "listContacts",
        "インシデント時の連絡体制",
    ),
    r(
        "POST",
        "/compliance/contacts",
        "saveContacts",
        "連絡体制図の保存（全体を置き換え）",
    ),
    r(
        "GET",
        "/compliance/registers/{register}",
        "listRegister",
        "施設の台帳（disposal 破棄・take_out 持ち出し・training 教育訓練・outsourcing 外部保存）",
    ),
    r(
        "POST",
        "/compliance/registers/{register}",
        "saveRegisterEntry",
        "台帳への記録・更新（削除はできない。変更は台帳の版として ledger に残る）",
    ),
    r(
        "GET",
        "/compliance/profile",
        "complianceProfile",
        "安全管理体制（責任者・規程と BCP の制定日）",
    ),
    r(
        "POST",
        "/compliance/profile",
        "saveComplianceProfile",
        "安全管理体制の保存",
    ),
    r(
        "GET",
        "/compliance/documents/{kind}",
        "facilityDocument",
        "連絡体制図・運用管理規程草案・バックアップ方針/BCP 草案（JSON または ?format=pdf）",
    ),
    public(
        "GET",
        "/openapi.json",
        "openapi",
        "この API の OpenAPI 文書",
    ),
    public("GET", "/health", "health", "稼働確認"),
];

fn handler(op: &str) -> MethodRouter<Arc<Service>> {
    use api::*;
    match op {
        "login" => post(login),
        "changePassword" => post(change_password),
        "logout" => post(logout),
        "me" => get(me),
        "createUser" => post(create_user),
        "listUsers" => get(list_users),
        "unusedUsers" => get(unused_users),
        "accountHygiene" => get(account_hygiene),
        "clockStatus" => get(clock_status),
        "secondFactorStatus" => get(second_factor_status),
        "completeSecondFactor" => post(complete_second_factor),
        "passkeyAssertionOptions" => post(passkey_assertion_options),
        "completePasskey" => post(complete_passkey),
        "passkeyRegistrationOptions" => post(passkey_registration_options),
        "registerPasskey" => post(register_passkey),
        "listPasskeys" => get(list_passkeys),
        "removePasskey" => post(remove_passkey),
        "beginTotp" => post(begin_totp),
        "confirmTotp" => post(confirm_totp),
        "removeTotp" => post(remove_totp),
        "resetSecondFactor" => post(reset_second_factor),
        "setRoleTwoFactor" => post(set_role_two_factor),
        "setRoleClientCert" => post(set_role_client_cert),
        "caCertificate" => get(ca_certificate),
        "caCrl" => get(ca_crl),
        "listCertificates" => get(list_certificates),
        "issueCertificate" => post(issue_certificate),
        "revokeCertificate" => post(revoke_certificate),
        "maintenanceWindows" => get(maintenance_windows),
        "requestMaintenance" => post(request_maintenance),
        "approveMaintenance" => post(approve_maintenance),
        "rejectMaintenance" => post(reject_maintenance),
        "maintenanceReport" => get(maintenance_report),
        "acknowledgeMaintenance" => post(acknowledge_maintenance),
        "startEmergency" => post(start_emergency),
        "endEmergency" => post(end_emergency),
        "emergencyQueue" => get(emergency_queue),
        "reviewEmergency" => post(review_emergency),
        "disableUser" => post(disable_user),
        "enableUser" => post(enable_user),
        "unlockUser" => post(unlock_user),
        "resetPassword" => post(reset_password),
        "setRole" => post(set_role),
        "issueToken" => post(issue_token),
        "revokeToken" => post(revoke_token),
        "listRoles" => get(roles),
        "saveRole" => post(save_role),
        "listRoleProposals" => get(role_proposals),
        "approveRoleProposal" => post(approve_role_proposal),
        "rejectRoleProposal" => post(reject_role_proposal),
        "listRecordKinds" => get(kinds),
        "saveRecordKind" => post(save_kind),
        "createPatient" => post(create_patient),
        "searchPatients" => get(search_patients),
        "getPatient" => get(patient),
        "patientRecords" => get(patient_records),
        "createRecord" => post(create_record),
        "getRecord" => get(record),
        "recordVersions" => get(versions),
        "diffVersions" => get(diff),
        "updateDraft" => put(update_draft),
        "submitRecord" => post(submit),
        "finalizeRecord" => post(finalize),
        "approveRecord" => post(approve),
        "rejectRecord" => post(reject),
        "amendRecord" => post(amend),
        "markEnteredInError" => post(entered_in_error),
        "getAttachment" => get(attachment),
        "printRecord" => get(print),
        "pendingApprovals" => get(approvals),
        "auditEvents" => get(audit_events),
        "patientAccessCounts" => get(access_counts),
        "ledgerCheckpoint" => get(checkpoint),
        "backupStatus" => get(backup_status),
        "runBackup" => post(run_backup),
        "runRestoreDrill" => post(run_restore_drill),
        "recordOfflineCopy" => post(record_offline_copy),
        "ledgerProof" => get(proof),
        "recordEvidence" => get(record_evidence),
        "exportRecordBundle" => get(record_bundle),
        "exportPatientBundle" => get(patient_bundle),
        "exportRecordBundleEncrypted" => post(api::registers::record_bundle_encrypted),
        "exportPatientBundleEncrypted" => post(api::registers::patient_bundle_encrypted),
        "eraseBackupTarget" => post(api::registers::erase_backup_target),
        "listRegister" => get(api::registers::list_register),
        "saveRegisterEntry" => post(api::registers::save_register_entry),
        "evidenceStatus" => get(evidence_status),
        "beginExternalSignature" => post(begin_external_signature),
        "completeExternalSignature" => post(complete_external_signature),
        "sealEvidence" => post(seal_evidence),
        "listCatalogues" => get(api::compliance::list_catalogues),
        "listAssessments" => get(api::compliance::list_assessments),
        "createAssessment" => post(api::compliance::create_assessment),
        "getAssessment" => get(api::compliance::get_assessment),
        "assessmentReportPdf" => get(api::compliance::assessment_pdf),
        "answerItem" => post(api::compliance::answer_item),
        "addItemEvidence" => post(api::compliance::add_item_evidence),
        "closeAssessment" => post(api::compliance::close_assessment),
        "listAssets" => get(api::compliance::list_assets),
        "saveAsset" => post(api::compliance::save_asset),
        "importAssets" => post(api::compliance::import_assets),
        "exportAssets" => get(api::compliance::export_assets),
        "listRisks" => get(api::compliance::list_risks),
        "saveRisk" => post(api::compliance::save_risk),
        "listContacts" => get(api::compliance::list_contacts),
        "saveContacts" => post(api::compliance::save_contacts),
        "complianceProfile" => get(api::compliance::get_profile),
        "saveComplianceProfile" => post(api::compliance::save_profile),
        "facilityDocument" => get(api::compliance::facility_document),
        "openapi" => get(|| async { axum::Json(openapi::document()) }),
        "health" => get(health),
        other => unreachable!("route {other} has no handler"),
    }
}

/// Operations whose body carries files (records with attachments, evidence files, the asset
/// CSV); every other request body is small.
const UPLOAD_OPS: &[&str] = &[
    "createRecord",
    "updateDraft",
    "amendRecord",
    "addItemEvidence",
    "importAssets",
    "saveRegisterEntry",
];

/// Largest body of a request that carries no file: forms, JSON, credentials.
pub const SMALL_BODY: usize = 64 * 1024;

/// Largest body of an upload: the attachment limit, grown by base64 and the JSON or form
/// around it (a record may carry several attachments).
pub fn upload_body_limit(svc: &Service) -> usize {
    (svc.config().records.max_attachment_bytes as usize).saturating_mul(4) / 3 * 5 + (1 << 20)
}

/// The pages' bodies are bounded before any handler reads them: uploads (multipart forms)
/// to the upload limit, every other form to `SMALL_BODY`. A declared length past the limit is
/// refused at once; an undeclared one is cut off when it passes it.
async fn bounded_body(
    axum::extract::State(svc): axum::extract::State<Arc<Service>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // The API's routes carry their own limits (uploads large, everything else small, read no
    // further than that); a body declared larger than any of them is refused unread.
    if req.uri().path().starts_with("/api/") {
        if declared.is_some_and(|n| n > upload_body_limit(&svc)) {
            return error::ApiError(mamori_service::ServiceError::new(
                ErrorCode::TooLarge,
                "送信されたデータが大きすぎます",
            ))
            .into_response();
        }
        return next.run(req).await;
    }
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let limit = if multipart {
        upload_body_limit(&svc)
    } else {
        SMALL_BODY
    };
    if declared.is_some_and(|n| n > limit) {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "送信されたデータが大きすぎます（ファイルは1件あたりの上限以内にしてください）\nThe request is too large.\n",
        )
            .into_response();
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

pub fn router(svc: Arc<Service>) -> Router {
    let mut api: Router<Arc<Service>> = Router::new();
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Arc<Service>>> =
        Default::default();
    let upload = upload_body_limit(&svc);
    for route in ROUTES {
        let limit = if UPLOAD_OPS.contains(&route.op) {
            upload
        } else {
            SMALL_BODY
        };
        let h = handler(route.op).layer(DefaultBodyLimit::max(limit));
        let merged = match by_path.remove(route.path) {
            Some(existing) => existing.merge(h),
            None => h,
        };
        by_path.insert(route.path, merged);
    }
    for (path, mr) in by_path {
        api = api.route(path, mr);
    }
    let api = api.fallback(api::not_found);
    let pages = Router::new()
        .merge(ui::routes())
        .merge(ui::admin::routes())
        .merge(ui::account::routes())
        .merge(ui::emergency::routes())
        .merge(ui::maintenance::routes())
        .merge(ui::lock::routes())
        .merge(ui::certs::routes())
        .merge(ui::audit::routes())
        .merge(ui::backup::routes())
        .merge(ui::evidence::routes())
        .merge(ui::compliance::routes())
        .merge(ui::registers::routes())
        // Pages' forms: multipart (file uploads) up to the upload limit, checked with the
        // rest in `bounded_body`; the extractor's own limit is lifted to match.
        .layer(DefaultBodyLimit::max(upload));
    Router::new()
        .nest("/api/v1", api)
        .route(
            "/tsa",
            axum::routing::post(api::dev_tsa).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .route(
            "/ocsp",
            axum::routing::post(api::ocsp).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            bounded_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            headers::allowed_host,
        ))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(svc)
}

/// A file in the blob store that no row refers to is removed once it is this old (a write
/// references what it stored within seconds).
pub const ORPHAN_AGE_MS: u64 = 10 * 60_000;

/// Serves until `shutdown` resolves, signing a checkpoint periodically and at the end.
pub async fn serve(
    svc: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(svc, listener, None, shutdown).await
}

/// `serve`, over HTTPS (and with client certificates) when `tls` is given.
pub async fn serve_with(
    svc: Arc<Service>,
    listener: tokio::net::TcpListener,
    tls: Option<tls::TlsOptions>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Before anything is started: a bad certificate or key stops here, with nothing to undo.
    let acceptor = match &tls {
        Some(t) => Some(tls::TlsAcceptor::new(&svc, t).await?),
        None => None,
    };
    let every = Duration::from_secs(svc.config().ledger.checkpoint_interval_secs.max(1));
    let cp_svc = svc.clone();
    let ticker = tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.tick().await;
        loop {
            t.tick().await;
            if let Err(e) = cp_svc.checkpoint_now().await {
                tracing::warn!(error = %e, "periodic checkpoint failed");
            }
        }
    });
    let verifier = match svc.config().ledger.verify_interval_hours {
        0 => None,
        hours => {
            let v_svc = svc.clone();
            Some(tokio::spawn(async move {
                // Not at once: a restart should not cost a full verification before anything else.
                let first = tokio::time::Instant::now() + Duration::from_secs(60);
                let mut t = tokio::time::interval_at(first, Duration::from_secs(hours * 3600));
                loop {
                    t.tick().await;
                    match v_svc.verify_and_record(None).await {
                        Ok(v) if v.ok => tracing::info!(
                            entries = v.ledger_entries,
                            "scheduled verification passed"
                        ),
                        Ok(v) => tracing::error!(
                            problems = v.problems_total,
                            "scheduled verification FAILED"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "scheduled verification could not run")
                        }
                    }
                }
            }))
        }
    };
    let clock_svc = svc.clone();
    let clock_every = Duration::from_secs(svc.config().time.check_interval_secs.max(10));
    let clock_checker = tokio::spawn(async move {
        let mut t = tokio::time::interval(clock_every);
        loop {
            t.tick().await;
            if let Err(e) = clock_svc.check_clock().await {
                tracing::warn!(error = %e, "clock check failed");
            }
        }
    });
    // Events left by commands run beside the server, and the backup schedule.
    let bk_svc = svc.clone();
    let backups = tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_secs(5));
        let mut next_schedule_check = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            t.tick().await;
            if let Err(e) = bk_svc.ingest_outbox().await {
                tracing::warn!(error = %e, "could not record queued events");
            }
            if tokio::time::Instant::now() >= next_schedule_check {
                next_schedule_check = tokio::time::Instant::now() + Duration::from_secs(60);
                if bk_svc.backup_due().await.unwrap_or(false) {
                    match bk_svc.backup_now(None).await {
                        Ok(()) => tracing::info!("scheduled backup started"),
                        Err(e) if e.code == ErrorCode::BackupRunning => {}
                        Err(e) => tracing::warn!(error = %e, "scheduled backup could not start"),
                    }
                }
            }
        }
    });
    // Evidence: sign what a crash left unsigned, retry due time-stamps, seal and renew; and
    // hourly, remove files no row refers to (content of refused writes).
    let ev_svc = svc.clone();
    let evidence = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut minutes = 0u64;
        loop {
            tick.tick().await;
            if minutes.is_multiple_of(60) {
                match ev_svc.sweep_orphan_blobs(ORPHAN_AGE_MS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(files = n, "unreferenced files removed"),
                    Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
                }
            }
            minutes += 1;
            match ev_svc.evidence_sweep(false).await {
                Ok(r) if r.sealed.is_some() || !r.renewed.is_empty() || r.signed > 0 => {
                    tracing::info!(?r, "evidence sweep")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "evidence sweep failed"),
            }
        }
    });
    let result = conn::accept_loop(svc.clone(), listener, acceptor, shutdown).await;
    ticker.abort();
    clock_checker.abort();
    backups.abort();
    evidence.abort();
    if let Some(v) = verifier {
        v.abort();
    }
    if let Err(e) = svc.checkpoint_now().await {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    svc.store().close();
    result
}
