//! The download a tax officer asks for (ダウンロードの求め, 電子帳簿保存法施行規則4条1項):
//! every document of a period as a ZIP — each version's file, an index CSV (UTF-8 with BOM, so
//! spreadsheet programs read the Japanese; one row per document, every search field), every
//! version with its reason, the time-stamp tokens and the TSA roots to check them with.

use std::io::Write;

use super::*;
use zip::write::SimpleFileOptions;

/// The largest ZIP built in memory; a longer period is refused with a way forward.
const MAX_EXPORT_BYTES: usize = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub documents: usize,
    pub files: usize,
    pub stamps: usize,
    pub bytes: usize,
    pub sha256: String,
}

const INDEX_HEADER: [&str; 23] = [
    "書類ID",
    "版",
    "状態",
    "書類の種類",
    "受領/発行",
    "取引年月日",
    "取引金額",
    "取引先",
    "登録番号",
    "書類番号",
    "受領日",
    "インボイス区分",
    "取引内容",
    "登録日時",
    "タイムスタンプ時刻",
    "タイムスタンプ局",
    "保存期限",
    "ファイル名",
    "ファイル（ZIP内）",
    "SHA-256",
    "タイムスタンプ（ZIP内）",
    "インボイス検査で不一致の項目",
    "注意",
];

fn jst(ms: mamori_domain::Millis) -> String {
    let t = crate::ledger::audit::jst_datetime(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn fail(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(ErrorCode::Export, format!("ZIP を作れませんでした: {e}"))
}

impl Service {
    /// The ZIP for [from, to] (取引年月日; documents without one by their registration day).
    pub async fn export_transactions(
        self: &Arc<Self>,
        p: Option<&Principal>,
        from: String,
        to: String,
    ) -> Result<(Vec<u8>, ExportSummary)> {
        self.may_read(p, actions::TRANSACTION_EXPORTED).await?;
        let q = self
            .ledgered(
                p,
                actions::TRANSACTION_EXPORTED,
                TxSearch::period(from, to, "出力する"),
            )
            .await?;
        let (df, dt) = (
            q.date_from.clone().unwrap_or_default(),
            q.date_to.clone().unwrap_or_default(),
        );
        let roots = self.tsa_roots_pem().unwrap_or_default();
        let now = self.now();
        self.read_logged(p, actions::TRANSACTION_EXPORTED, move |svc, r, t| {
            let mut docs = r.tx_search(&q)?;
            docs.extend(stamps::undated_in(r, &df, &dt)?);
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(true);
            let mut index = csv::WriterBuilder::new().from_writer(Vec::new());
            index.write_record(INDEX_HEADER).map_err(fail)?;
            let mut versions_csv = csv::WriterBuilder::new().from_writer(Vec::new());
            versions_csv
                .write_record([
                    "書類ID", "版", "変更", "理由", "入力者", "入力日時", "ファイル（ZIP内）", "SHA-256", "項目（JSON）",
                ])
                .map_err(fail)?;
            let (mut files, mut stamps_n, mut size) = (0, 0, 0usize);
            for d in &docs {
                let view = load_view(r, d.id, now)?;
                let dir = format!("files/{:06}", d.id);
                let mut written: Vec<(String, String)> = Vec::new();
                for v in &view.versions {
                    let path = match written.iter().find(|(sha, _)| *sha == v.file_sha256) {
                        Some((_, p)) => p.clone(),
                        None => {
                            let path = format!("{dir}/v{}_{}", v.version_no, safe_name(&v.file_name));
                            let bytes = svc.store().blobs().get(&v.file_sha256)?;
                            size += bytes.len();
                            if size > MAX_EXPORT_BYTES {
                                return Err(ServiceError::new(
                                    ErrorCode::TooLarge,
                                    "1GB を超えるため作れません。期間を短くして分けて出力してください",
                                ));
                            }
                            zip.start_file(path.as_str(), opts).map_err(fail)?;
                            zip.write_all(&bytes).map_err(fail)?;
                            files += 1;
                            written.push((v.file_sha256.clone(), path.clone()));
                            path
                        }
                    };
                    versions_csv
                        .write_record([
                            d.id.to_string(),
                            v.version_no.to_string(),
                            v.change.clone(),
                            v.reason.clone().unwrap_or_default(),
                            v.entered_by_name.clone().unwrap_or_default(),
                            jst(v.entered_at),
                            path,
                            v.file_sha256.clone(),
                            serde_json::to_string(&v.fields).unwrap_or_default(),
                        ])
                        .map_err(fail)?;
                }
                for s in r.tx_stamps(d.id)? {
                    let path = format!("timestamps/{:06}_{}.tst", d.id, &s.file_sha256[..12]);
                    zip.start_file(path.as_str(), opts).map_err(fail)?;
                    zip.write_all(&s.token).map_err(fail)?;
                    stamps_n += 1;
                }
                let f = &view.fields;
                let current_file = written
                    .iter()
                    .find(|(sha, _)| *sha == d.file_sha256)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                let current = view.versions.last();
                let failed: Vec<String> = view
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| c.message.clone())
                    .collect();
                index
                    .write_record([
                        d.id.to_string(),
                        d.current_version.to_string(),
                        if d.status == "active" { "有効" } else { "取消" }.to_owned(),
                        f.doc_type.label_ja().to_owned(),
                        f.direction.label_ja().to_owned(),
                        f.transaction_date.clone().unwrap_or_default(),
                        f.amount.map(|a| a.to_string()).unwrap_or_default(),
                        f.counterparty.clone().unwrap_or_default(),
                        f.registration_number.clone().unwrap_or_default(),
                        f.document_number.clone().unwrap_or_default(),
                        f.received_on.clone().unwrap_or_default(),
                        f.invoice_kind.map(|k| k.label_ja()).unwrap_or_default().to_owned(),
                        f.description.clone().unwrap_or_default(),
                        jst(d.registered_at),
                        view.stamp.as_ref().map(|s| jst(s.gen_time)).unwrap_or_default(),
                        view.stamp.as_ref().map(|s| s.tsa.clone()).unwrap_or_default(),
                        d.retention_until.clone(),
                        current.map(|v| v.file_name.clone()).unwrap_or_default(),
                        current_file,
                        d.file_sha256.clone(),
                        view.stamp
                            .as_ref()
                            .map(|s| format!("timestamps/{:06}_{}.tst", d.id, &s.file_sha256[..12]))
                            .unwrap_or_default(),
                        failed.join(" / "),
                        view.warnings.join(" / "),
                    ])
                    .map_err(fail)?;
            }
            let bom = |body: Vec<u8>| [b"\xef\xbb\xbf".as_slice(), &body].concat();
            zip.start_file("index.csv", opts).map_err(fail)?;
            zip.write_all(&bom(index.into_inner().map_err(fail)?)).map_err(fail)?;
            zip.start_file("versions.csv", opts).map_err(fail)?;
            zip.write_all(&bom(versions_csv.into_inner().map_err(fail)?)).map_err(fail)?;
            zip.start_file("tsa-roots.pem", opts).map_err(fail)?;
            zip.write_all(roots.as_bytes()).map_err(fail)?;
            zip.start_file("README.txt", opts).map_err(fail)?;
            zip.write_all(
                format!(
                    "{} 取引書類（電子取引データ） {} 〜 {}\r\n\r\n\
                     index.csv     1書類1行（取引年月日・取引金額・取引先ほか全検索項目、UTF-8 BOM付き）\r\n\
                     versions.csv  すべての版（訂正・取消とその理由、入力者、日時）\r\n\
                     files/        各書類の各版のファイル（files/書類ID/v版_ファイル名）\r\n\
                     timestamps/   各ファイルの RFC 3161 タイムスタンプトークン\r\n\
                     tsa-roots.pem タイムスタンプ局のルート証明書\r\n\r\n\
                     検証の例（OpenSSL）:\r\n  openssl ts -verify -token_in -in timestamps/000001_xxxxxxxxxxxx.tst \\\r\n    -data files/000001/v1_請求書.pdf -CAfile tsa-roots.pem\r\n\r\n\
                     作成: {}（mamori）\r\n",
                    svc.facility(),
                    df,
                    dt,
                    jst(now)
                )
                .as_bytes(),
            )
            .map_err(fail)?;
            let bytes = zip.finish().map_err(fail)?.into_inner();
            let summary = ExportSummary {
                documents: docs.len(),
                files,
                stamps: stamps_n,
                bytes: bytes.len(),
                sha256: sha256_hex(&bytes),
            };
            t.detail("from", df.clone());
            t.detail("to", dt.clone());
            t.detail("documents", summary.documents);
            t.detail("files", summary.files);
            t.detail("zip_sha256", summary.sha256.clone());
            Ok((bytes, summary))
        })
        .await
    }
}
