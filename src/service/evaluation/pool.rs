//! The expert pool (评标专家库) as CSV: one row per expert with its centre,
//! specialties, employer and declared relations (people only as digests).
//! An import is checked whole first — a file with any bad row changes
//! nothing and lists every problem as `row N.column` — and export → import
//! is a fixed point.

use std::collections::BTreeSet;

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::evaluation::{self as repo, ExpertRow};
use crate::db::DbConn;
use crate::domain::credit_code::CreditCode;
use crate::domain::ids::ExpertId;
use crate::domain::problems::Problems;
use crate::error::{AppError, AppResult};
use crate::evaluation::draw::{self, PoolEntry};
use crate::evaluation::pass::Centre;

/// The pool's CSV columns, in order. Lists inside a field are separated by
/// `;`. `related_people` takes identifiers (ID numbers, e-mail addresses) and
/// stores only their digests; an exported digest (`sha256:…`) imports as is.
pub const CSV_COLUMNS: [&str; 9] = [
    "id",
    "centre",
    "name",
    "email",
    "specialties",
    "employer",
    "related_orgs",
    "related_people",
    "available",
];

fn list(field: &str) -> Vec<String> {
    let mut v: Vec<String> = field
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn code_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a pool CSV; every problem is listed (`row N.column`), and nothing
/// is returned unless the whole file is sound.
pub fn parse_pool_csv(text: &str, now: i64) -> Result<Vec<ExpertRow>, AppError> {
    let mut p = Problems::new();
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(_) => return Err(AppError::invalid_field("csv", "not a CSV file")),
    };
    if header != CSV_COLUMNS {
        return Err(AppError::invalid_field(
            "csv",
            format!("the header must be: {}", CSV_COLUMNS.join(",")),
        ));
    }
    let mut rows = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let f = |c: &str| format!("row {}.{c}", i + 2);
        let rec = match rec {
            Ok(r) if r.len() == CSV_COLUMNS.len() => r,
            _ => {
                p.push(f("*"), "a row needs exactly 9 fields");
                continue;
            }
        };
        let id = rec[0].to_string();
        p.check(
            code_like(&id, 40),
            f("id"),
            "1-40 characters of A-Z, a-z, 0-9, '-', '_'",
        );
        p.check(ids.insert(id.clone()), f("id"), "duplicate id");
        p.check(
            Centre::valid_code(&rec[1]),
            f("centre"),
            "a centre code (A-Z, 0-9, '-')",
        );
        let name = rec[2].to_string();
        p.check(
            !name.is_empty() && name.chars().count() <= 100,
            f("name"),
            "1-100 characters",
        );
        let email = rec[3].to_string();
        p.check(
            email.parse::<lettre::Address>().is_ok(),
            f("email"),
            "an e-mail address",
        );
        let specialties = list(&rec[4]);
        p.check(
            !specialties.is_empty() && specialties.iter().all(|s| code_like(s, 40)),
            f("specialties"),
            "at least one specialty code (A-Z, a-z, 0-9, '-', '_'), separated by ';'",
        );
        let employer = rec[5].to_string();
        p.check(
            CreditCode::parse(&employer).is_ok(),
            f("employer"),
            "the employer's 统一社会信用代码",
        );
        let orgs = list(&rec[6]);
        for o in &orgs {
            p.check(
                CreditCode::parse(o).is_ok(),
                f("related_orgs"),
                format!("{o:?} is not a 统一社会信用代码"),
            );
        }
        let people: Vec<String> = list(&rec[7])
            .into_iter()
            .map(|x| match x.strip_prefix("sha256:") {
                Some(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    d.to_ascii_lowercase()
                }
                _ => draw::party_digest(&x),
            })
            .collect();
        let available = match rec[8].to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => {
                p.push(f("available"), "yes or no");
                false
            }
        };
        rows.push(ExpertRow {
            id: ExpertId::from_db(id),
            centre: rec[1].to_string(),
            name,
            email,
            specialties: serde_json::to_string(&specialties).expect("strings"),
            employer,
            related_orgs: serde_json::to_string(&orgs).expect("strings"),
            related_people: serde_json::to_string(&{
                let mut v = people;
                v.sort();
                v.dedup();
                v
            })
            .expect("strings"),
            available,
            updated_at: now,
        });
    }
    if rows.is_empty() && p.is_empty() {
        p.push("csv", "no experts in the file");
    }
    p.result(rows).map_err(AppError::validation)
}

/// The pool as CSV (the import's format; people as digests).
pub fn pool_csv(rows: &[ExpertRow]) -> AppResult<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).map_err(AppError::internal)?;
    for r in rows {
        let j = |s: &str| -> AppResult<String> {
            let v: Vec<String> = serde_json::from_str(s).map_err(AppError::internal)?;
            Ok(v.join(";"))
        };
        let people: Vec<String> =
            serde_json::from_str(&r.related_people).map_err(AppError::internal)?;
        let people: Vec<String> = people.iter().map(|d| format!("sha256:{d}")).collect();
        w.write_record([
            r.id.as_str(),
            &r.centre,
            &r.name,
            &r.email,
            &j(&r.specialties)?,
            &r.employer,
            &j(&r.related_orgs)?,
            &people.join(";"),
            if r.available { "yes" } else { "no" },
        ])
        .map_err(AppError::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(AppError::internal)?).map_err(AppError::internal)
}

/// How many experts an import inserted or replaced.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolImported {
    pub imported: usize,
}

/// Imports a pool CSV: every row is checked first; any bad row changes
/// nothing and every problem is listed.
pub fn import_pool(c: &mut DbConn, text: &str, now: i64) -> AppResult<PoolImported> {
    let rows = parse_pool_csv(text, now)?;
    let imported = crate::db::write_tx(c, |c| Ok(repo::upsert_experts(c, &rows)?))?;
    Ok(PoolImported { imported })
}

pub fn export_pool(c: &mut DbConn) -> AppResult<String> {
    pool_csv(&repo::all_experts(c)?)
}

pub(super) fn entry(r: &ExpertRow) -> AppResult<PoolEntry> {
    let v = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(AppError::internal);
    Ok(PoolEntry {
        expert_id: r.id.to_string(),
        centre: r.centre.clone(),
        specialties: v(&r.specialties)?,
        employer: r.employer.clone(),
        related_orgs: v(&r.related_orgs)?,
        related_people: v(&r.related_people)?,
    })
}
