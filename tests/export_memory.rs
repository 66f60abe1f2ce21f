//! The audit export streams: exporting 100,000 events keeps the server's memory flat. A test
//! binary of its own, so that no other test shares the process whose memory is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use catalogue_tests::{Engine, Role, seeded_database, serve};
use diesel::prelude::*;

const EVENTS: usize = 100_000;
/// How much the process may grow while the export runs.
const GROWTH_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn insert_events(db: &db::Database) {
    // A realistic after-state of a few hundred bytes per event. Written as literal multi-row
    // INSERTs (the values are this test's own): diesel's batch insert does not span both engines.
    let state = serde_json::json!({"id": 1, "entitlement_id": 7, "organisation_code": "RR8", "quantity": 40,
        "claimed_quantity": 40, "status": "live", "reference": "PO-2026-000123", "created_at": "2026-11-30T04:00:00",
        "note": "x".repeat(200)})
    .to_string();
    assert!(!state.contains('\''));
    db.transaction(|conn| {
        for batch in 0..EVENTS / 1000 {
            let rows: Vec<String> = (0..1000)
                .map(|i| {
                    format!(
                        "('2026-11-30 04:00:00', 'bulk@test.nhs.uk', 'allocation.claim', 'allocation', '{}', 'RR8', '{state}')",
                        batch * 1000 + i
                    )
                })
                .collect();
            diesel::sql_query(format!(
                "INSERT INTO audit_events (occurred_at, actor, action, entity, entity_id, organisation_code, after_state) VALUES {}",
                rows.join(", ")
            ))
            .execute(conn)?;
        }
        Ok(())
    })
    .unwrap();
}

async fn export_keeps_memory_flat(engine: Engine) {
    let Some(database) = seeded_database(engine) else { return };
    insert_events(&database.db);
    let app = serve(database, engine);
    let (_, token) = app.sign_in(Role::Auditor, None).await;
    // Warm up: the first export loads code and fills the pool.
    let warm = app.get("/v1/audit/export?entity=seed").bearer_auth(&token).send().await.unwrap();
    assert_eq!(warm.status(), 200);
    warm.text().await.unwrap();

    let baseline = resident_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, running) = (peak.clone(), running.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                peak.fetch_max(resident_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut response = app.get("/v1/audit/export?format=jsonl").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (mut bytes, mut lines) = (0u64, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    running.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "{engine:?}: exported {lines} events, {:.1} MB; resident memory grew by {:.1} MB (baseline {:.1} MB)",
        bytes as f64 / 1e6,
        growth as f64 / 1e6,
        baseline as f64 / 1e6
    );
    assert!(lines > EVENTS, "every event was exported: {lines}");
    assert!(
        bytes > 3 * GROWTH_LIMIT_BYTES,
        "the export ({bytes} bytes) is far larger than the bound it is held to"
    );
    assert!(growth < GROWTH_LIMIT_BYTES, "memory grew by {growth} bytes while exporting {bytes}");
}

#[actix_web::test]
async fn exporting_100_000_events_keeps_memory_flat() {
    // One engine after the other, so each measurement has the process to itself.
    export_keeps_memory_flat(Engine::Sqlite).await;
    export_keeps_memory_flat(Engine::Postgres).await;
}
