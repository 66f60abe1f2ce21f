//! `db/src/schema.rs` is written by hand for both engines: this compares it, table by table and
//! column by column (type and nullability), with what the migrations of each engine create.

use std::collections::BTreeMap;

use catalogue_tests::{Engine, TestDatabase, on_both_databases};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// table -> column -> (diesel type without `Nullable`, nullable).
type Columns = BTreeMap<String, BTreeMap<String, (String, bool)>>;

/// The tables and columns `schema.rs` declares.
fn declared() -> Columns {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../db/src/schema.rs");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut tables = Columns::new();
    let mut table: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if line.starts_with("    ") && !line.starts_with("        ") && trimmed.ends_with('{') {
            let name = trimmed.split_whitespace().next().unwrap_or_default().to_owned();
            tables.insert(name.clone(), BTreeMap::new());
            table = Some(name);
        } else if let (Some(table), Some((column, kind))) = (&table, trimmed.split_once(" -> ")) {
            let kind = kind.trim_end_matches(',');
            let (kind, nullable) = match kind.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (kind, false),
            };
            tables.get_mut(table).unwrap().insert(column.to_owned(), (kind.to_owned(), nullable));
        } else if trimmed == "}" && line.starts_with("    }") {
            table = None;
        }
    }
    assert!(
        tables.len() > 10 && tables.values().all(|c| !c.is_empty()),
        "schema.rs was not read: {tables:?}"
    );
    tables
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    column_type: String,
    #[diesel(sql_type = BigInt)]
    nullable: i64,
}

/// The diesel type a column's declared type maps to on `engine`.
fn diesel_type(engine: Engine, column_type: &str, primary_key: bool) -> String {
    let kind = match (engine, column_type.to_ascii_lowercase().as_str()) {
        (_, "text") => "Text",
        (_, "bigint") => "BigInt",
        // SQLite's rowid alias is 64-bit whatever it is called.
        (Engine::Sqlite, "integer") if primary_key => "BigInt",
        (_, "integer") => "Integer",
        (_, "boolean") => "Bool",
        (_, "date") => "Date",
        (Engine::Sqlite, "timestamp") | (Engine::Postgres, "timestamp without time zone") => "Timestamp",
        (_, other) => return format!("unmapped {other}"),
    };
    kind.to_owned()
}

/// The tables and columns the migrations created.
fn migrated(test_db: &TestDatabase) -> Columns {
    let engine = test_db.db.engine();
    let rows: Vec<(Column, bool)> = match engine {
        Engine::Sqlite => {
            let mut conn =
                diesel::SqliteConnection::establish(db::connection::sqlite_path(&test_db.url)).unwrap();
            // pk > 0 marks a primary key column; an INTEGER PRIMARY KEY is the 64-bit rowid.
            #[derive(QueryableByName)]
            struct SqliteColumn {
                #[diesel(embed)]
                column: Column,
                #[diesel(sql_type = BigInt)]
                pk: i64,
            }
            diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, p.type AS column_type, \
                 CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 0 ELSE 1 END AS nullable, p.pk AS pk \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '__diesel%'",
            )
            .load::<SqliteColumn>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|row| (row.column, row.pk > 0))
            .collect()
        }
        Engine::Postgres => {
            let mut conn = diesel::PgConnection::establish(&test_db.url).unwrap();
            diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                 data_type::text AS column_type, CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END::bigint AS nullable \
                 FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '__diesel%'",
            )
            .load::<Column>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|row| (row, false))
            .collect()
        }
    };
    let mut tables = Columns::new();
    for (row, primary_key) in rows {
        let kind = diesel_type(engine, &row.column_type, primary_key);
        tables.entry(row.table_name).or_default().insert(row.column_name, (kind, row.nullable == 1));
    }
    tables
}

fn schema_rs_matches_the_migrations(test_db: TestDatabase) {
    let declared = declared();
    let migrated = migrated(&test_db);
    let mut differences = Vec::new();
    for table in declared.keys().chain(migrated.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (ours, theirs) = (declared.get(table), migrated.get(table));
        let (Some(ours), Some(theirs)) = (ours, theirs) else {
            differences.push(format!(
                "{table}: in schema.rs {}, migrated {}",
                ours.is_some(),
                theirs.is_some()
            ));
            continue;
        };
        for column in ours.keys().chain(theirs.keys()).collect::<std::collections::BTreeSet<_>>() {
            if ours.get(column) != theirs.get(column) {
                differences.push(format!(
                    "{table}.{column}: schema.rs {:?}, migrated {:?}",
                    ours.get(column),
                    theirs.get(column)
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "schema.rs and the {:?} migrations differ:\n{}",
        test_db.db.engine(),
        differences.join("\n")
    );
}

on_both_databases!(schema_rs_matches_the_migrations);
