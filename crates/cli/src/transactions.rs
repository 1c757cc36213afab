//! `mamori transactions`: the 電子帳簿保存法 documents from the command line — import a file
//! (a JP PINT e-invoice needs no flags), search, the tax officer's ZIP, 一括検証, and the
//! registration-number check. Acts as the instance's operator (the server must be stopped;
//! while it runs, the browser and the API do the same) and is in the ledger as such.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use mamori_domain::bookkeeping::{
    self, CounterpartyKind, Direction, DocType, DocumentFields, InvoiceKind,
};
use mamori_service::transactions::{TxFile, TxInput, TxSearch};

use crate::evidence::with_instance;
use crate::fail;

#[derive(Subcommand)]
pub enum TransactionsCmd {
    /// Register a transaction document; prints its ID on the last line.
    Import {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// The file: PDF, JPEG, PNG, TIFF, or a JP PINT / Peppol UBL invoice (XML).
        file: PathBuf,
        /// invoice, receipt, quotation, contract, delivery, order or other.
        #[arg(long = "type", default_value = "invoice")]
        doc_type: String,
        /// received or issued.
        #[arg(long, default_value = "received")]
        direction: String,
        /// 取引年月日 (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
        /// 取引金額 in yen.
        #[arg(long, allow_negative_numbers = true)]
        amount: Option<i64>,
        /// 取引先.
        #[arg(long)]
        counterparty: Option<String>,
        /// The issuer's 登録番号 (T + 13 digits).
        #[arg(long)]
        registration: Option<String>,
        /// The counterparty is a sole proprietor (its number is format-checked only).
        #[arg(long)]
        individual: bool,
        /// Keep a registration number whose check digit fails, as the document prints it.
        #[arg(long)]
        as_printed: bool,
        /// 受領日 (YYYY-MM-DD).
        #[arg(long)]
        received: Option<String>,
        /// The document's own number.
        #[arg(long)]
        number: Option<String>,
        /// qualified (適格請求書), simplified (適格簡易請求書) or return (適格返還請求書).
        #[arg(long)]
        invoice_kind: Option<String>,
    },
    /// Search by 取引年月日, 取引金額 and 取引先, alone or combined.
    Search {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long, default_value = "")]
        from: String,
        #[arg(long, default_value = "")]
        to: String,
        #[arg(long, default_value = "")]
        min: String,
        #[arg(long, default_value = "")]
        max: String,
        #[arg(long, default_value = "")]
        counterparty: String,
        /// Only documents where this field is empty: transaction_date, amount or counterparty.
        #[arg(long, default_value = "")]
        missing: String,
        /// Include cancelled documents.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// The tax officer's download (ダウンロードの求め): a period's documents as a ZIP.
    Export {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// 一括検証: every time-stamp of a period; exit 1 if any fails.
    VerifyStamps {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Import the NTA 公表サイト's data (a CSV of the 全件 or 差分 download, unzipped) to confirm
    /// registration numbers on their transaction dates; mamori itself contacts no one.
    ImportRegistry {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        file: PathBuf,
    },
    /// Check a registration number: exit 0 when well formed with a valid check digit.
    CheckNumber {
        number: String,
        /// A sole proprietor's number (format only; it has no 法人番号 check digit).
        #[arg(long)]
        individual: bool,
    },
}

fn parse<T>(v: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Result<T, String> {
    f(v).ok_or_else(|| format!("{what}「{v}」は使えません"))
}

pub fn run(cmd: TransactionsCmd) -> ExitCode {
    match cmd {
        TransactionsCmd::CheckNumber { number, individual } => {
            let kind = if individual {
                CounterpartyKind::Individual
            } else {
                CounterpartyKind::Corporation
            };
            match bookkeeping::registration::check(&number, kind) {
                Ok(n) => {
                    println!(
                        "{n}: 形式{}は正しい",
                        if individual { "" } else { "と検査用数字" }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {}", number.trim(), e.message_ja());
                    ExitCode::from(1)
                }
            }
        }
        TransactionsCmd::ImportRegistry { data, file } => {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => return fail(format!("{} を読めません: {e}", file.display())),
            };
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match with_instance(&data, |svc| async move {
                svc.import_invoice_registry(None, name, bytes).await
            }) {
                Ok(s) => {
                    println!(
                        "公表サイトのデータを取り込みました: {} 件（{}、SHA-256 {}）",
                        s.rows, s.imported_on, s.file_sha256
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        TransactionsCmd::Import {
            data,
            file,
            doc_type,
            direction,
            date,
            amount,
            counterparty,
            registration,
            individual,
            as_printed,
            received,
            number,
            invoice_kind,
        } => {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => return fail(format!("{} を読めません: {e}", file.display())),
            };
            let fields = (|| -> Result<(DocumentFields, Vec<&'static str>), String> {
                let mut given = vec!["doc_type", "direction"];
                let mut note = |name: &'static str, present: bool| {
                    if present {
                        given.push(name);
                    }
                };
                note("transaction_date", date.is_some());
                note("amount", amount.is_some());
                note("counterparty", counterparty.is_some());
                note("registration_number", registration.is_some());
                note("document_number", number.is_some());
                let f = DocumentFields {
                    doc_type: parse(&doc_type, "--type", DocType::parse)?,
                    direction: parse(&direction, "--direction", Direction::parse)?,
                    transaction_date: date,
                    amount,
                    counterparty,
                    counterparty_kind: if individual {
                        CounterpartyKind::Individual
                    } else {
                        CounterpartyKind::Corporation
                    },
                    registration_number: registration,
                    received_on: received,
                    document_number: number,
                    invoice_kind: match invoice_kind {
                        Some(k) => Some(parse(&k, "--invoice-kind", InvoiceKind::parse)?),
                        None => None,
                    },
                    ..Default::default()
                };
                Ok((f, given))
            })();
            let (fields, given) = match fields {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into());
            let r = with_instance(&data, |svc| async move {
                svc.register_transaction(
                    None,
                    TxInput {
                        fields,
                        as_printed,
                        given,
                    },
                    TxFile { name, bytes },
                )
                .await
            });
            match r {
                Ok(w) => {
                    if let Some(spec) = &w.e_invoice {
                        println!("電子インボイス（{spec}）から項目を読み取りました");
                    }
                    match &w.stamp_error {
                        None => println!("登録し、タイムスタンプを付与しました"),
                        Some(e) => println!(
                            "登録しました。タイムスタンプは付与できませんでした（サーバーが再試行します）: {e}"
                        ),
                    }
                    println!("{}", w.id);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        TransactionsCmd::Search {
            data,
            from,
            to,
            min,
            max,
            counterparty,
            missing,
            all,
            json,
        } => {
            let q = TxSearch {
                from,
                to,
                min,
                max,
                counterparty,
                missing,
                include_cancelled: all,
                limit: 10_000,
                ..Default::default()
            };
            match with_instance(&data, |svc| async move {
                svc.search_transactions(None, q).await
            }) {
                Ok(rows) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&rows).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(rows) => {
                    println!(
                        "{:>6}  {:<10}  {:>12}  {:<8}  取引先",
                        "ID", "取引年月日", "取引金額", "種類"
                    );
                    for d in &rows {
                        println!(
                            "{:>6}  {:<10}  {:>12}  {:<8}  {}{}",
                            d.id,
                            d.transaction_date.as_deref().unwrap_or("（なし）"),
                            d.amount
                                .map(bookkeeping::invoice::yen)
                                .unwrap_or_else(|| "（なし）".into()),
                            DocType::parse(&d.doc_type)
                                .map(|t| t.label_ja())
                                .unwrap_or(""),
                            d.counterparty.as_deref().unwrap_or("（なし）"),
                            if d.status == "cancelled" {
                                "（取消）"
                            } else {
                                ""
                            }
                        );
                    }
                    println!("{} 件", rows.len());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        TransactionsCmd::Export {
            data,
            from,
            to,
            out,
        } => {
            match with_instance(&data, |svc| async move {
                svc.export_transactions(None, from, to).await
            }) {
                Ok((zip, s)) => {
                    if let Err(e) = std::fs::write(&out, &zip) {
                        return fail(format!("{} に書けません: {e}", out.display()));
                    }
                    println!(
                        "{}: {} 書類、ファイル {}、タイムスタンプ {}（SHA-256 {}）",
                        out.display(),
                        s.documents,
                        s.files,
                        s.stamps,
                        s.sha256
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        TransactionsCmd::VerifyStamps {
            data,
            from,
            to,
            json,
        } => {
            match with_instance(&data, |svc| async move {
                svc.verify_transaction_stamps(None, from, to).await
            }) {
                Ok(rep) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&rep).unwrap_or_default());
                    } else {
                        println!(
                            "{} 〜 {}: 書類 {}、タイムスタンプ {}、有効 {}、開発用TSA {}",
                            rep.from, rep.to, rep.documents, rep.stamps, rep.valid, rep.development
                        );
                        for p in &rep.problems {
                            println!("  #{} {}", p.document, p.message);
                        }
                    }
                    if rep.passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => fail(e),
            }
        }
    }
}
