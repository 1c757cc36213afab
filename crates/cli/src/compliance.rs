//! `mamori compliance`: the self-assessment from the command line (lists catalogues, starts an
//! assessment, writes its report as JSON, HTML or PDF). Acts as the instance's operator and is
//! recorded in the ledger as such.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::evidence::with_instance;
use crate::fail;

#[derive(Subcommand)]
pub enum ComplianceCmd {
    /// List the catalogues (checklist and guideline editions) this instance knows.
    Catalogues {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
    },
    /// Start an assessment; prints its ID on the last line.
    New {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// A catalogue ID from `mamori compliance catalogues`.
        #[arg(long)]
        catalogue: String,
        /// The assessment date (YYYY-MM-DD); today if omitted.
        #[arg(long, default_value = "")]
        date: String,
    },
    /// Write an assessment's report.
    Report {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        assessment: i64,
        /// json (every item, answer, observed or declared), html or pdf.
        #[arg(long, default_value = "pdf")]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: ComplianceCmd) -> ExitCode {
    match cmd {
        ComplianceCmd::Catalogues { data } => catalogues(&data),
        ComplianceCmd::New {
            data,
            catalogue,
            date,
        } => {
            match with_instance(&data, |svc| async move {
                svc.new_assessment_cli(&catalogue, &date).await
            }) {
                Ok(id) => {
                    println!("自己点検を開始しました。ブラウザの 自己点検 で回答できます。");
                    println!("{id}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        ComplianceCmd::Report {
            data,
            assessment,
            format,
            out,
        } => report(&data, assessment, &format, &out),
    }
}

fn catalogues(data: &Path) -> ExitCode {
    let r = with_instance(data, |svc| async move { Ok(svc.catalogue_summaries()) });
    match r {
        Ok((list, problems)) => {
            println!(
                "{:<32} {:<10} {:<22} {:>5} {:>5}  タイトル",
                "ID", "年度", "版", "項目", "観測"
            );
            for c in &list {
                println!(
                    "{:<32} {:<10} {:<22} {:>5} {:>5}  {}",
                    c.header.id,
                    c.header.fiscal_year,
                    c.header.edition,
                    c.items,
                    c.observable,
                    c.header.title
                );
            }
            for p in &problems {
                eprintln!("読み込めなかった点検表: {p}");
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(e),
    }
}

fn report(data: &Path, id: i64, format: &str, out: &Path) -> ExitCode {
    if !matches!(format, "json" | "html" | "pdf") {
        return fail("--format は json・html・pdf のいずれかです");
    }
    let fmt = format.to_owned();
    let r = with_instance(data, |svc| async move {
        Ok(match fmt.as_str() {
            "json" => {
                let v = svc.assessment_json(None, id).await?;
                let mut s = serde_json::to_string_pretty(&v).expect("JSON serialises");
                s.push('\n');
                s.into_bytes()
            }
            "html" => svc
                .assessment_doc(None, id)
                .await?
                .to_html(None, "")
                .into_bytes(),
            _ => mamori_compliance::pdf::render(&svc.assessment_doc(None, id).await?),
        })
    });
    let bytes = match r {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if let Err(e) = std::fs::write(out, &bytes) {
        return fail(format!("{} に書けません: {e}", out.display()));
    }
    println!(
        "{} に書き出しました（{} バイト）",
        out.display(),
        bytes.len()
    );
    ExitCode::SUCCESS
}
