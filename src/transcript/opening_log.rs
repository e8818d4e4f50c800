//! The opening's agreement with its log: every time of the record and of
//! the closing statement is the time of the leaf that logged the event, the
//! closing lists exactly the logged incidents, and each upheld incident is
//! its declaration signed by a supervisor's registered key (PROTOCOL §12.6,
//! §12.7 steps 14–16). `opening::verify` calls these once it has checked
//! the record itself.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::opening::Context;
use crate::crypto::opening::{self as fmt, Closing};

/// The leaves of type `ty`, in log order.
pub(super) fn of_type<'a>(
    leaves: &'a [(u64, &'a Value)],
    ty: &'a str,
) -> impl Iterator<Item = &'a (u64, &'a Value)> + 'a {
    leaves.iter().filter(move |(_, l)| l["type"] == ty)
}

/// Each upheld incident: its ruling is the logged incident's (reason,
/// bidders, the time it was declared), signed by a supervisor's identity key
/// registered when it was countersigned, once.
pub(super) fn incident_rulings(x: &Context<'_>, leaves: &[(u64, &Value)]) -> Result<(), String> {
    let mut upheld = BTreeSet::new();
    for (i, l) in of_type(leaves, "opening.incident_countersigned") {
        let id = l["incident_id"].as_str().unwrap_or_default();
        ensure!(upheld.insert(id), "incident {id} is upheld twice");
        let declared = of_type(leaves, "opening.incident")
            .find(|(_, d)| d["incident_id"] == id)
            .map(|(_, d)| *d)
            .ok_or_else(|| format!("incident {id} is upheld but was never declared"))?;
        let ruling: fmt::IncidentRuling = serde_json::from_value(l["ruling"].clone())
            .map_err(|e| format!("incident {id}: the ruling: {e}"))?;
        ensure!(
            ruling.section_id == x.section_id
                && ruling.incident_id == id
                && declared["reason"] == ruling.reason.as_str()
                && declared["bidders"] == serde_json::json!(ruling.bidders)
                && at_ms(declared) == Some(ruling.declared_at_ms),
            "incident {id}: the ruling is not the logged incident"
        );
        let key = l["supervisor_key"].as_str().unwrap_or_default();
        ensure!(
            ruling.verify(key, l["signature"].as_str().unwrap_or_default()),
            "incident {id}: the supervisor's signature on the ruling does not verify"
        );
        ensure!(
            super::staff_key_in_force(
                x.staff_keys,
                l["supervisor"].as_str().unwrap_or_default(),
                "supervisor_identity",
                key,
                (*i, at_ms(l).unwrap_or(i64::MIN)),
            ),
            "incident {id}: the ruling is not signed by a key the supervisor had registered (with its proof) when it was made"
        );
    }
    Ok(())
}

/// The time of a leaf (`at_ms`), the server's clock when it was logged.
pub(super) fn at_ms(l: &Value) -> Option<i64> {
    l["at_ms"].as_i64()
}

/// The record's times are the log's (PROTOCOL §12.3): each is the `at_ms`
/// of the leaf that logged the event, so a record cannot date a release, a
/// settlement or the announcement other than the log does. The deadline is
/// the latest parameters' (an amendment's extension included).
pub(super) fn record_times(
    deadline_ms: i64,
    announcement: &Value,
    record: &Value,
    leaves: &[(u64, &Value)],
) -> Result<(), String> {
    ensure!(
        record["deadline_ms"].as_i64() == Some(deadline_ms),
        "the record's deadline_ms is not the deadline of the latest parameters"
    );
    ensure!(
        at_ms(announcement).is_some() && record["announced_at_ms"].as_i64() == at_ms(announcement),
        "the record's announced_at_ms is not the time the log announced it"
    );
    if let Some(started) = record["window_started_at_ms"].as_i64() {
        ensure!(
            of_type(leaves, "opening.started").any(|(_, l)| at_ms(l) == Some(started)),
            "the record's window_started_at_ms is not the time the log opened the window"
        );
    }
    let last_end = leaves
        .iter()
        .filter(|(_, l)| {
            [
                "opening.started",
                "opening.window_extended",
                "opening.resumed",
            ]
            .contains(&l["type"].as_str().unwrap_or_default())
        })
        .filter_map(|(_, l)| l["window_ends_at_ms"].as_i64())
        .next_back();
    ensure!(
        record["window_ends_at_ms"].as_i64() == last_end,
        "the record's window_ends_at_ms is not the last end the log gave the window"
    );
    let listed = record["key_releases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut stated: Vec<(i64, &str, i64)> = Vec::new();
    for r in listed {
        stated.push((
            r["position"]
                .as_i64()
                .ok_or("a record key release without a position")?,
            r["custodian"].as_str().unwrap_or_default(),
            r["released_at_ms"]
                .as_i64()
                .ok_or("a record key release without its time")?,
        ));
    }
    let mut logged: Vec<(i64, &str, i64)> = of_type(leaves, "opening.key_released")
        .map(|(_, l)| {
            (
                l["position"].as_i64().unwrap_or(-1),
                l["custodian"].as_str().unwrap_or_default(),
                at_ms(l).unwrap_or(-1),
            )
        })
        .collect();
    stated.sort_unstable();
    logged.sort_unstable();
    ensure!(
        stated == logged,
        "the record's key releases (position, custodian, released_at_ms) differ from the log's"
    );
    for rb in record["bids"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let h = &rb["envelope_hash"];
        let settled =
            of_type(leaves, "opening.bid_settled").find(|(_, l)| l["envelope_hash"] == *h);
        ensure!(
            settled.is_some_and(
                |(_, l)| at_ms(l).is_some() && rb["settled_at_ms"].as_i64() == at_ms(l)
            ),
            "bid {}: its settled_at_ms is not the time the log settled it",
            h.as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// The closing statement's times and incidents are the log's: each
/// confirmation, objection, answer and incident dated by its leaf, the close
/// by `opening.closed`, and exactly the logged incidents listed, each
/// `countersigned` when the log upheld it.
pub(super) fn closing_times(
    c: &Closing,
    closed: &Value,
    leaves: &[(u64, &Value)],
) -> Result<(), String> {
    let time_of = |ty: &str, key: &str, value: &str| {
        of_type(leaves, ty)
            .find(|(_, l)| l[key] == value)
            .and_then(|(_, l)| at_ms(l))
    };
    ensure!(
        at_ms(closed) == Some(c.closed_at_ms),
        "the closing statement's closed_at_ms is not the time the log closed it"
    );
    for k in &c.confirmations {
        ensure!(
            time_of("opening.confirmed", "bidder", &k.bidder) == Some(k.confirmed_at_ms),
            "{}'s confirmed_at_ms in the closing statement is not the time the log confirmed it",
            k.bidder
        );
    }
    for j in &c.objections {
        ensure!(
            time_of("opening.objection", "objection_id", &j.id) == Some(j.raised_at_ms)
                && time_of("opening.answered", "objection_id", &j.id) == Some(j.answered_at_ms),
            "objection {}: its raised_at_ms or answered_at_ms in the closing statement is not the log's",
            j.id
        );
    }
    let logged: BTreeMap<&str, &Value> = of_type(leaves, "opening.incident")
        .map(|(_, l)| (l["incident_id"].as_str().unwrap_or_default(), *l))
        .collect();
    ensure!(
        c.incidents.len() == logged.len(),
        "the closing statement lists {} incidents, the log {}",
        c.incidents.len(),
        logged.len()
    );
    for i in &c.incidents {
        let l = logged.get(i.id.as_str()).ok_or_else(|| {
            format!(
                "incident {} of the closing statement is not in the log",
                i.id
            )
        })?;
        let upheld = of_type(leaves, "opening.incident_countersigned")
            .any(|(_, u)| u["incident_id"] == i.id.as_str());
        ensure!(
            l["reason"] == i.reason.as_str()
                && l["bidders"] == serde_json::json!(i.bidders)
                && at_ms(l) == Some(i.declared_at_ms)
                && upheld == i.countersigned,
            "incident {}: the closing statement differs from the log (reason, bidders, declared_at_ms or countersigned)",
            i.id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::opening::tests::{in_context, params};
    use serde_json::json;

    /// Leaves of a small opening: the window opened at 10, custodian 1
    /// released at 20, one bid settled at 30, announced at 40, confirmed at
    /// 50, an objection at 51 answered at 52, an incident at 15 upheld, the
    /// close at 60.
    fn leaves() -> Vec<Value> {
        vec![
            json!({"type": "opening.started", "at_ms": 10, "window_ends_at_ms": 100}),
            json!({"type": "opening.resumed", "at_ms": 17, "window_ends_at_ms": 101}),
            json!({"type": "opening.incident", "at_ms": 15, "incident_id": "inc_1",
                   "reason": "power", "bidders": []}),
            json!({"type": "opening.incident_countersigned", "at_ms": 16, "incident_id": "inc_1"}),
            json!({"type": "opening.key_released", "at_ms": 20, "position": 1, "custodian": "usr_c"}),
            json!({"type": "opening.bid_settled", "at_ms": 30, "envelope_hash": "h1"}),
            json!({"type": "opening.announced", "at_ms": 40}),
            json!({"type": "opening.confirmed", "at_ms": 50, "bidder": "org_a"}),
            json!({"type": "opening.objection", "at_ms": 51, "objection_id": "obj_1"}),
            json!({"type": "opening.answered", "at_ms": 52, "objection_id": "obj_1"}),
            json!({"type": "opening.closed", "at_ms": 60}),
        ]
    }

    #[test]
    fn the_records_times_are_the_times_of_its_leaves() {
        let all = leaves();
        let indexed: Vec<(u64, &Value)> =
            all.iter().enumerate().map(|(i, l)| (i as u64, l)).collect();
        let record = json!({"deadline_ms": 1, "announced_at_ms": 40, "window_started_at_ms": 10,
                            "window_ends_at_ms": 101,
                            "key_releases": [{"position": 1, "custodian": "usr_c", "released_at_ms": 20}],
                            "bids": [{"envelope_hash": "h1", "settled_at_ms": 30}]});
        record_times(1, &all[6], &record, &indexed).unwrap();
        for (path, value, says) in [
            (
                "/deadline_ms",
                json!(2),
                "deadline of the latest parameters",
            ),
            ("/announced_at_ms", json!(41), "announced_at_ms"),
            ("/window_started_at_ms", json!(11), "window_started_at_ms"),
            ("/window_ends_at_ms", json!(100), "window_ends_at_ms"),
            ("/key_releases/0/released_at_ms", json!(19), "key releases"),
            ("/key_releases/0/custodian", json!("usr_x"), "key releases"),
            ("/bids/0/settled_at_ms", json!(31), "settled_at_ms"),
        ] {
            let mut r = record.clone();
            *r.pointer_mut(path).unwrap() = value;
            let e = record_times(1, &all[6], &r, &indexed).unwrap_err();
            assert!(e.contains(says), "{path}: {e}");
        }
        let mut r = record.clone();
        r["key_releases"] = json!([]);
        assert!(
            record_times(1, &all[6], &r, &indexed).is_err(),
            "a release left out"
        );
    }

    #[test]
    fn the_closing_statements_times_and_incidents_are_the_logs() {
        use crate::crypto::opening::{ClosingConfirmation, ClosingIncident, ClosingObjection};
        let all = leaves();
        let indexed: Vec<(u64, &Value)> =
            all.iter().enumerate().map(|(i, l)| (i as u64, l)).collect();
        let closing = Closing {
            format: fmt::CLOSING_FORMAT.into(),
            section_id: "sec_t".into(),
            record_hash: "r".into(),
            confirmations: vec![ClosingConfirmation {
                bidder: "org_a".into(),
                signer_key: "k".into(),
                signature: "s".into(),
                confirmed_at_ms: 50,
            }],
            objections: vec![ClosingObjection {
                id: "obj_1".into(),
                bidder: "org_b".into(),
                text: "t".into(),
                raised_at_ms: 51,
                answer: "a".into(),
                answered_at_ms: 52,
            }],
            no_response: vec![],
            incidents: vec![ClosingIncident {
                id: "inc_1".into(),
                reason: "power".into(),
                bidders: vec![],
                declared_at_ms: 15,
                countersigned: true,
            }],
            closed_by: "usr_h".into(),
            closed_at_ms: 60,
        };
        closing_times(&closing, &all[10], &indexed).unwrap();
        type Alter = fn(&mut Closing);
        let variants: [(Alter, &str); 9] = [
            (|c| c.closed_at_ms = 61, "closed_at_ms"),
            (
                |c| c.confirmations[0].confirmed_at_ms = 49,
                "confirmed_at_ms",
            ),
            (|c| c.objections[0].raised_at_ms = 50, "raised_at_ms"),
            (|c| c.objections[0].answered_at_ms = 53, "answered_at_ms"),
            (|c| c.incidents.clear(), "lists 0 incidents, the log 1"),
            (|c| c.incidents[0].countersigned = false, "incident inc_1"),
            (|c| c.incidents[0].declared_at_ms = 14, "incident inc_1"),
            (|c| c.incidents[0].reason = "flood".into(), "incident inc_1"),
            (|c| c.incidents[0].id = "inc_2".into(), "not in the log"),
        ];
        for (alter, says) in variants {
            let mut c = closing.clone();
            alter(&mut c);
            let e = closing_times(&c, &all[10], &indexed).unwrap_err();
            assert!(e.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn an_upheld_incident_is_its_declaration_signed_by_a_registered_supervisor_key() {
        let supervisor = crate::crypto::sign::generate();
        let key = hex::encode(supervisor.verifying_key().as_bytes());
        let ruling = fmt::IncidentRuling {
            format: fmt::INCIDENT_FORMAT.into(),
            section_id: "sec_t".into(),
            incident_id: "inc_1".into(),
            reason: "power".into(),
            bidders: vec![],
            declared_at_ms: 15,
        };
        let upheld = |ruling: &fmt::IncidentRuling, user: &str| {
            json!({"type": "opening.incident_countersigned", "at_ms": 16, "incident_id": "inc_1",
                   "ruling": ruling, "supervisor": user, "supervisor_key": key,
                   "signature": ruling.sign(&supervisor)})
        };
        let staff = vec![crate::transcript::StaffKey {
            user: "usr_s".into(),
            purpose: "supervisor_identity".into(),
            public_key: key.clone(),
            registered_at_ms: 10,
            retired_at_ms: None,
            statement: String::new(),
            proof: String::new(),
            registered: crate::transcript::LogEntry {
                index: 0,
                leaf: json!({}),
                proof: vec![],
            },
            retired: None,
        }];
        let run = |leaves: Vec<Value>, staff: &[crate::transcript::StaffKey]| {
            let indexed: Vec<(u64, &Value)> = leaves
                .iter()
                .enumerate()
                .map(|(i, l)| (i as u64, l))
                .collect();
            in_context(&params(), &BTreeMap::new(), staff, |x| {
                incident_rulings(x, &indexed)
            })
        };
        let declared = leaves()
            .into_iter()
            .find(|l| l["type"] == "opening.incident")
            .unwrap();
        run(vec![declared.clone(), upheld(&ruling, "usr_s")], &staff).unwrap();
        let e = run(vec![upheld(&ruling, "usr_s")], &staff).unwrap_err();
        assert!(e.contains("never declared"), "{e}");
        let mut other = ruling.clone();
        other.reason = "flood".into();
        let e = run(vec![declared.clone(), upheld(&other, "usr_s")], &staff).unwrap_err();
        assert!(e.contains("not the logged incident"), "{e}");
        let mut forged = upheld(&ruling, "usr_s");
        forged["signature"] = json!("00".repeat(64));
        let e = run(vec![declared.clone(), forged], &staff).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let e = run(vec![declared.clone(), upheld(&ruling, "usr_x")], &staff).unwrap_err();
        assert!(
            e.contains("not signed by a key the supervisor had registered"),
            "{e}"
        );
        let mut late = staff.clone();
        late[0].registered_at_ms = 17;
        let e = run(vec![declared.clone(), upheld(&ruling, "usr_s")], &late).unwrap_err();
        assert!(
            e.contains("not signed by a key the supervisor had registered"),
            "{e}"
        );
        // Registered in time by its word, but logged after the ruling.
        let mut backdated = staff.clone();
        backdated[0].registered.index = 1;
        let e = run(vec![declared.clone(), upheld(&ruling, "usr_s")], &backdated).unwrap_err();
        assert!(
            e.contains("not signed by a key the supervisor had registered"),
            "{e}"
        );
        let e = run(
            vec![declared, upheld(&ruling, "usr_s"), upheld(&ruling, "usr_s")],
            &staff,
        )
        .unwrap_err();
        assert!(e.contains("upheld twice"), "{e}");
    }
}
