//! Mirrored migrations: the same folders on both backends, each with up and
//! down, and up → down → up works on both.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use kaibiao::config::DatabaseTarget;
use kaibiao::db::Db;

use crate::helpers::TestStore;

fn folders(backend: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(
                e.path().join("up.sql").is_file() && e.path().join("down.sql").is_file(),
                "{:?} needs up.sql and down.sql",
                e.path()
            );
            e.file_name().to_string_lossy().into_owned()
        })
        .collect()
}

#[test]
fn migrations_are_mirrored() {
    let sqlite = folders("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, folders("postgres"));
}

fn up_down_up(target: DatabaseTarget) {
    let db = Db::connect(&target, 2, 5_000, Duration::from_secs(10)).unwrap();
    let v1 = db.migrate().unwrap();
    db.revert_all().unwrap();
    assert_eq!(db.schema_version_blocking().unwrap(), "none");
    let v2 = db.migrate().unwrap();
    assert_eq!(v1, v2);
    // The schema is usable after the round trip.
    let mut c = db.get_blocking().unwrap();
    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT count(*) FROM sections"), &mut **c)
        .unwrap();
}

#[test]
fn up_down_up_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    up_down_up(DatabaseTarget::Sqlite(dir.path().join("m.sqlite3")));
}

#[test]
fn up_down_up_on_postgres() {
    let store = TestStore::postgres();
    up_down_up(DatabaseTarget::Postgres(
        store.database_url.clone().unwrap(),
    ));
}
