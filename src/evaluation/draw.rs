//! The draw of an evaluation committee (专家抽取): a deterministic function of
//! a seed and a published snapshot of the expert pool, so that anyone holding
//! both can recompute who was drawn, who was skipped for a conflict (回避) and
//! in which order the reserves are called.
//!
//! Each eligible expert gets a ticket `SHA-256("kaibiao/draw/v1" || 0x00 ||
//! seed || snapshot_hash || expert_id)`; experts are taken in ticket order,
//! requirement by requirement, skipping anyone already taken, without the
//! specialty, or in conflict with the tenderer or a bidder.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::crypto::{jcs, sha256, sha256_hex};
use crate::domain::decimal::Ratio;

pub const TICKET_LABEL: &str = "kaibiao/draw/v1";
pub const SEED_LABEL: &str = "kaibiao/draw-seed/v1";
pub const PARTY_LABEL: &str = "kaibiao/party/v1";
pub const K_LABEL: &str = "kaibiao/k-coefficient/v1";

/// One expert as published in the pool snapshot. No names: the snapshot
/// names experts by their pool id, and people they declared a relation to
/// only by [`party_digest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolEntry {
    pub expert_id: String,
    /// The expert's home trading centre (its code).
    pub centre: String,
    pub specialties: Vec<String>,
    /// The employer's 统一社会信用代码.
    pub employer: String,
    /// Declared relations: organisations by credit code, people by digest.
    #[serde(default)]
    pub related_orgs: Vec<String>,
    #[serde(default)]
    pub related_people: Vec<String>,
}

/// The pool as frozen for one draw, sorted by expert id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub experts: Vec<PoolEntry>,
}

impl Snapshot {
    pub fn new(mut experts: Vec<PoolEntry>) -> Self {
        for e in &mut experts {
            e.specialties.sort();
            e.specialties.dedup();
            e.related_orgs.sort();
            e.related_orgs.dedup();
            e.related_people.sort();
            e.related_people.dedup();
        }
        experts.sort_by(|a, b| a.expert_id.cmp(&b.expert_id));
        Self { experts }
    }

    /// SHA-256 of the snapshot's canonical JSON (JCS), hex.
    pub fn hash(&self) -> String {
        sha256_hex(&jcs::to_vec(self).expect("a snapshot is plain JSON"))
    }
}

/// A declared relation to a person is published as this digest of the
/// person's identifier (upper-cased, trimmed): never the identifier itself.
pub fn party_digest(identifier: &str) -> String {
    let mut m = PARTY_LABEL.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(identifier.trim().to_uppercase().as_bytes());
    sha256_hex(&m)
}

/// The K coefficient for a seed: candidate number
/// `u64(SHA-256(label || 0 || seed)[0..8]) mod len`.
pub fn k_for(seed: &[u8; 32], candidates: &[Ratio]) -> Option<Ratio> {
    if candidates.is_empty() {
        return None;
    }
    let mut m = K_LABEL.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(seed);
    let h = sha256(&m);
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    Some(candidates[(n % candidates.len() as u64) as usize])
}

/// The commitment to a seed that is logged before the draw.
pub fn seed_commitment(seed: &[u8; 32]) -> String {
    let mut m = SEED_LABEL.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(seed);
    sha256_hex(&m)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub specialty: String,
    /// Members of this specialty on the committee.
    pub count: u32,
    /// Reserves of this specialty, called in order when a member declines
    /// or recuses.
    #[serde(default)]
    pub reserves: u32,
}

/// What the host asks for: the specialties and the centres to draw from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrawRequest {
    pub requirements: Vec<Requirement>,
    /// The centres whose pools are drawn from (the host centre and named
    /// remote centres).
    pub centres: Vec<String>,
    /// The tenderer's representatives (业主代表) sitting on the committee,
    /// who are not drawn but count towards its size.
    #[serde(default)]
    pub tenderer_representatives: u32,
}

/// Who must be avoided (回避).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Parties {
    /// The tenderer's credit code.
    pub tenderer: String,
    /// Every bidder's credit code.
    pub bidders: Vec<String>,
    /// Every bidder's organisation id on this platform (as the bids name
    /// it) and its credit code: logged by hash with the draw, so anyone can
    /// check that every bidder of the transcript was avoided.
    #[serde(default)]
    pub bidder_ids: std::collections::BTreeMap<String, String>,
    /// Digests ([`party_digest`]) of the bidders' people (legal
    /// representatives, project managers, the users who sealed bids).
    #[serde(default)]
    pub bidder_people: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    EmployedByTenderer,
    EmployedByBidder,
    RelatedToTenderer,
    RelatedToBidder,
    RelatedToBidderPerson,
}

impl ConflictKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::EmployedByTenderer => "employed by the tenderer",
            Self::EmployedByBidder => "employed by a bidder",
            Self::RelatedToTenderer => "declared a relation with the tenderer",
            Self::RelatedToBidder => "declared a relation with a bidder",
            Self::RelatedToBidderPerson => "declared a relation with a bidder's person",
        }
    }
}

/// The first conflict an expert has with the parties, if any (fixed order:
/// employment before declared relations, tenderer before bidders).
pub fn conflict(e: &PoolEntry, p: &Parties) -> Option<(ConflictKind, String)> {
    if e.employer == p.tenderer {
        return Some((ConflictKind::EmployedByTenderer, p.tenderer.clone()));
    }
    if let Some(b) = p.bidders.iter().find(|b| **b == e.employer) {
        return Some((ConflictKind::EmployedByBidder, b.clone()));
    }
    if e.related_orgs.contains(&p.tenderer) {
        return Some((ConflictKind::RelatedToTenderer, p.tenderer.clone()));
    }
    if let Some(b) = p.bidders.iter().find(|b| e.related_orgs.contains(b)) {
        return Some((ConflictKind::RelatedToBidder, b.clone()));
    }
    if let Some(d) = p
        .bidder_people
        .iter()
        .find(|d| e.related_people.contains(d))
    {
        return Some((ConflictKind::RelatedToBidderPerson, d.clone()));
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub expert_id: String,
    pub specialty: String,
    pub centre: String,
    /// The ticket, hex, so a reader can see the order without recomputing.
    pub ticket: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub expert_id: String,
    pub kind: ConflictKind,
    /// The credit code or person digest the conflict is with.
    pub party: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawResult {
    pub snapshot_hash: String,
    pub members: Vec<Seat>,
    /// Per specialty, in the order they are called.
    pub reserves: Vec<Seat>,
    /// Experts with a required specialty passed over for a conflict, in
    /// ticket order.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    /// The request itself breaks the composition rules; each string says
    /// what is wrong.
    #[error("the committee breaks the composition rules: {}", .0.join("; "))]
    Composition(Vec<String>),
    /// Not enough eligible experts; each string says what is missing.
    #[error("not enough eligible experts: {}", .0.join("; "))]
    Shortfall(Vec<String>),
}

/// The composition rules (DESIGN §6): at least 5 members, an odd number,
/// experts at least two thirds of the committee; every requirement sensible.
pub fn check_composition(r: &DrawRequest) -> Result<(), DrawError> {
    let mut problems = Vec::new();
    let experts: u32 = r.requirements.iter().map(|q| q.count).sum();
    let total = experts + r.tenderer_representatives;
    if r.requirements.is_empty() {
        problems.push("name at least one specialty to draw".to_string());
    }
    let mut seen = BTreeSet::new();
    for q in &r.requirements {
        if q.specialty.trim().is_empty() {
            problems.push("a requirement has no specialty".into());
        } else if !seen.insert(q.specialty.as_str()) {
            problems.push(format!("specialty {:?} is named twice", q.specialty));
        }
        if q.count == 0 {
            problems.push(format!("specialty {:?} asks for no members", q.specialty));
        }
        if q.count > 50 || q.reserves > 50 {
            problems.push(format!("specialty {:?} asks for more than 50", q.specialty));
        }
    }
    if r.centres.is_empty() {
        problems.push("name at least one centre to draw from".into());
    }
    if total < 5 {
        problems.push(format!(
            "the committee has {total} members, at least 5 are required"
        ));
    }
    if total.is_multiple_of(2) {
        problems.push(format!(
            "the committee has {total} members, an odd number is required"
        ));
    }
    if experts * 3 < total * 2 {
        problems.push(format!(
            "{experts} drawn experts of {total} members; experts must be at least two thirds"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DrawError::Composition(problems))
    }
}

fn ticket(seed: &[u8; 32], snapshot_hash: &str, expert_id: &str) -> [u8; 32] {
    let mut m = Vec::with_capacity(96 + expert_id.len());
    m.extend_from_slice(TICKET_LABEL.as_bytes());
    m.push(0);
    m.extend_from_slice(seed);
    m.extend_from_slice(snapshot_hash.as_bytes());
    m.extend_from_slice(expert_id.as_bytes());
    sha256(&m)
}

/// The draw. Deterministic in (`request`, `parties`, `snapshot`, `seed`).
pub fn draw(
    request: &DrawRequest,
    parties: &Parties,
    snapshot: &Snapshot,
    seed: &[u8; 32],
) -> Result<DrawResult, DrawError> {
    check_composition(request)?;
    let snapshot_hash = snapshot.hash();
    let centres: BTreeSet<&str> = request.centres.iter().map(String::as_str).collect();
    let mut order: Vec<([u8; 32], &PoolEntry)> = snapshot
        .experts
        .iter()
        .filter(|e| centres.contains(e.centre.as_str()))
        .map(|e| (ticket(seed, &snapshot_hash, &e.expert_id), e))
        .collect();
    order.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.expert_id.cmp(&b.1.expert_id))
    });

    // Everyone in conflict who has a required specialty is passed over and
    // written down, in ticket order, whether or not the draw reached them.
    let wanted: BTreeSet<&str> = request
        .requirements
        .iter()
        .map(|q| q.specialty.as_str())
        .collect();
    let mut skipped = Vec::new();
    let mut conflicted = BTreeSet::new();
    for (_, e) in &order {
        if !e.specialties.iter().any(|s| wanted.contains(s.as_str())) {
            continue;
        }
        if let Some((kind, party)) = conflict(e, parties) {
            conflicted.insert(e.expert_id.as_str());
            skipped.push(Skipped {
                expert_id: e.expert_id.clone(),
                kind,
                party,
            });
        }
    }
    let mut taken = BTreeSet::new();
    let (mut members, mut reserves, mut shortfall) = (Vec::new(), Vec::new(), Vec::new());
    for q in &request.requirements {
        let want = (q.count + q.reserves) as usize;
        let mut got = Vec::new();
        for (t, e) in &order {
            if got.len() == want {
                break;
            }
            if taken.contains(e.expert_id.as_str())
                || !e.specialties.contains(&q.specialty)
                || conflicted.contains(e.expert_id.as_str())
            {
                continue;
            }
            taken.insert(e.expert_id.as_str());
            got.push(Seat {
                expert_id: e.expert_id.clone(),
                specialty: q.specialty.clone(),
                centre: e.centre.clone(),
                ticket: hex::encode(t),
            });
        }
        if got.len() < want {
            let in_conflict = order
                .iter()
                .filter(|(_, e)| {
                    e.specialties.contains(&q.specialty)
                        && conflicted.contains(e.expert_id.as_str())
                })
                .count();
            shortfall.push(format!(
                "specialty {:?} needs {} members and {} reserves from centres {}; {} eligible \
                 ({} skipped for a conflict)",
                q.specialty,
                q.count,
                q.reserves,
                request.centres.join(", "),
                got.len(),
                in_conflict
            ));
            continue;
        }
        let rest = got.split_off(q.count as usize);
        members.extend(got);
        reserves.extend(rest);
    }
    if !shortfall.is_empty() {
        return Err(DrawError::Shortfall(shortfall));
    }
    Ok(DrawResult {
        snapshot_hash,
        members,
        reserves,
        skipped,
    })
}

/// The next reserve to call for a seat of `specialty`, given who has already
/// been called (members, reserves already seated, reserves who declined).
pub fn next_reserve<'a>(
    result: &'a DrawResult,
    specialty: &str,
    called: &BTreeSet<String>,
) -> Option<&'a Seat> {
    result
        .reserves
        .iter()
        .find(|s| s.specialty == specialty && !called.contains(&s.expert_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENDERER: &str = "91440101MA5CXXXX01";
    const BIDDER_A: &str = "91440101MA5CAAAA0A";
    const BIDDER_B: &str = "91440101MA5CBBBB0B";

    fn expert(id: &str, centre: &str, spec: &[&str], employer: &str) -> PoolEntry {
        PoolEntry {
            expert_id: id.into(),
            centre: centre.into(),
            specialties: spec.iter().map(|s| s.to_string()).collect(),
            employer: employer.into(),
            related_orgs: vec![],
            related_people: vec![],
        }
    }

    fn parties() -> Parties {
        Parties {
            tenderer: TENDERER.into(),
            bidders: vec![BIDDER_A.into(), BIDDER_B.into()],
            bidder_people: vec![party_digest("440101199001011234")],
            ..Parties::default()
        }
    }

    fn request(count: u32, reserves: u32) -> DrawRequest {
        DrawRequest {
            requirements: vec![Requirement {
                specialty: "civil".into(),
                count,
                reserves,
            }],
            centres: vec!["GZ".into(), "SZ".into(), "ZH".into()],
            tenderer_representatives: 0,
        }
    }

    fn seed(n: u8) -> [u8; 32] {
        sha256(&[n])
    }

    /// `clean` experts without conflicts spread over three centres, plus one
    /// expert for each kind of conflict.
    fn pool(clean: usize) -> Snapshot {
        let centres = ["GZ", "SZ", "ZH"];
        let mut v: Vec<PoolEntry> = (0..clean)
            .map(|i| {
                expert(
                    &format!("E{i:03}"),
                    centres[i % 3],
                    &["civil"],
                    &format!("EMP{i}"),
                )
            })
            .collect();
        v.push(expert("C-TENDERER", "GZ", &["civil"], TENDERER));
        v.push(expert("C-BIDDER", "SZ", &["civil"], BIDDER_B));
        let mut r = expert("C-REL-T", "ZH", &["civil"], "EMPX");
        r.related_orgs = vec![TENDERER.into()];
        v.push(r);
        let mut r = expert("C-REL-B", "GZ", &["civil"], "EMPY");
        r.related_orgs = vec![BIDDER_A.into()];
        v.push(r);
        let mut r = expert("C-REL-P", "SZ", &["civil"], "EMPZ");
        r.related_people = vec![party_digest(" 440101199001011234 ")];
        v.push(r);
        Snapshot::new(v)
    }

    #[test]
    fn each_kind_of_conflict_is_found() {
        let p = parties();
        let s = pool(0);
        let kinds: Vec<_> = s
            .experts
            .iter()
            .map(|e| (e.expert_id.as_str(), conflict(e, &p).map(|c| c.0)))
            .collect();
        assert!(kinds.contains(&("C-TENDERER", Some(ConflictKind::EmployedByTenderer))));
        assert!(kinds.contains(&("C-BIDDER", Some(ConflictKind::EmployedByBidder))));
        assert!(kinds.contains(&("C-REL-T", Some(ConflictKind::RelatedToTenderer))));
        assert!(kinds.contains(&("C-REL-B", Some(ConflictKind::RelatedToBidder))));
        assert!(kinds.contains(&("C-REL-P", Some(ConflictKind::RelatedToBidderPerson))));
        assert_eq!(conflict(&expert("X", "GZ", &["civil"], "EMP"), &p), None);
    }

    #[test]
    fn nobody_in_conflict_is_ever_seated_and_every_skip_is_recorded() {
        let s = pool(9);
        let mut skipped_kinds = BTreeSet::new();
        for n in 0..60 {
            let r = draw(&request(5, 4), &parties(), &s, &seed(n)).unwrap();
            assert_eq!(r.members.len(), 5);
            assert_eq!(r.reserves.len(), 4);
            for seat in r.members.iter().chain(&r.reserves) {
                assert!(
                    seat.expert_id.starts_with('E'),
                    "{} was seated",
                    seat.expert_id
                );
            }
            // Every conflicted expert is passed over and written down,
            // whatever the order.
            assert_eq!(r.skipped.len(), 5, "{:?}", r.skipped);
            assert!(r.skipped.windows(2).all(|w| {
                let t = |id: &str| ticket(&seed(n), &s.hash(), id);
                t(&w[0].expert_id) < t(&w[1].expert_id)
            }));
            skipped_kinds.extend(r.skipped.iter().map(|k| k.kind));
        }
        assert_eq!(skipped_kinds.len(), 5);
    }

    #[test]
    fn the_draw_is_a_function_of_the_seed_and_the_snapshot() {
        let s = pool(20);
        let a = draw(&request(5, 2), &parties(), &s, &seed(1)).unwrap();
        let b = draw(&request(5, 2), &parties(), &s.clone(), &seed(1)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.snapshot_hash, s.hash());
        let c = draw(&request(5, 2), &parties(), &s, &seed(2)).unwrap();
        assert_ne!(a.members, c.members, "another seed draws another committee");
        // The snapshot is canonical: the order experts were listed in does not matter.
        let mut shuffled = s.experts.clone();
        shuffled.reverse();
        assert_eq!(Snapshot::new(shuffled).hash(), s.hash());
        // …but any change to the pool changes the hash, and so the draw.
        let mut changed = s.experts.clone();
        changed[0].employer = "SOMEONE-ELSE".into();
        assert_ne!(Snapshot::new(changed).hash(), s.hash());
        // Tickets are in increasing order within the members of one specialty.
        assert!(a.members.windows(2).all(|w| w[0].ticket < w[1].ticket));
    }

    #[test]
    fn every_expert_can_be_drawn() {
        let s = pool(12);
        let mut seen = BTreeSet::new();
        for n in 0..100 {
            for m in draw(&request(5, 0), &parties(), &s, &seed(n))
                .unwrap()
                .members
            {
                seen.insert(m.expert_id);
            }
        }
        assert_eq!(seen.len(), 12, "{seen:?}");
    }

    #[test]
    fn only_the_named_centres_are_drawn_from() {
        let s = pool(30);
        let mut req = request(5, 1);
        req.centres = vec!["GZ".into(), "ZH".into()];
        for n in 0..20 {
            let r = draw(&req, &parties(), &s, &seed(n)).unwrap();
            assert!(r
                .members
                .iter()
                .chain(&r.reserves)
                .all(|m| m.centre != "SZ"));
        }
    }

    #[test]
    fn several_specialties_never_seat_one_expert_twice() {
        let mut v = pool(0).experts;
        for i in 0..8 {
            v.push(expert(
                &format!("B{i}"),
                "GZ",
                &["civil", "cost"],
                &format!("M{i}"),
            ));
        }
        let s = Snapshot::new(v);
        let req = DrawRequest {
            requirements: vec![
                Requirement {
                    specialty: "civil".into(),
                    count: 3,
                    reserves: 1,
                },
                Requirement {
                    specialty: "cost".into(),
                    count: 2,
                    reserves: 1,
                },
            ],
            centres: vec!["GZ".into()],
            tenderer_representatives: 0,
        };
        let r = draw(&req, &parties(), &s, &seed(7)).unwrap();
        let ids: BTreeSet<_> = r
            .members
            .iter()
            .chain(&r.reserves)
            .map(|m| &m.expert_id)
            .collect();
        assert_eq!(ids.len(), 7);
        assert_eq!(
            r.members.iter().filter(|m| m.specialty == "cost").count(),
            2
        );
    }

    #[test]
    fn composition_rules_say_what_is_wrong() {
        let msg = |r: &DrawRequest| check_composition(r).unwrap_err().to_string();
        assert!(
            msg(&request(4, 0)).contains("at least 5"),
            "{}",
            msg(&request(4, 0))
        );
        assert!(msg(&request(6, 0)).contains("odd number"));
        let mut r = request(3, 0);
        r.tenderer_representatives = 2;
        assert!(msg(&r).contains("two thirds"), "{}", msg(&r));
        r.requirements[0].count = 5; // 5 experts + 2 representatives = 7, 15 ≥ 14
        assert_eq!(check_composition(&r), Ok(()));
        r.centres.clear();
        assert!(msg(&r).contains("centre"));
        assert!(check_composition(&request(7, 2)).is_ok());
    }

    #[test]
    fn a_shortfall_names_the_specialty_and_the_conflicts() {
        let e = draw(&request(5, 2), &parties(), &pool(6), &seed(3)).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, DrawError::Shortfall(_)));
        assert!(
            text.contains("\"civil\" needs 5 members and 2 reserves"),
            "{text}"
        );
        assert!(
            text.contains("6 eligible (5 skipped for a conflict)"),
            "{text}"
        );
    }

    #[test]
    fn reserves_are_called_in_order_per_specialty() {
        let r = draw(&request(5, 3), &parties(), &pool(10), &seed(9)).unwrap();
        let mut called: BTreeSet<String> = r.members.iter().map(|m| m.expert_id.clone()).collect();
        let first = next_reserve(&r, "civil", &called).unwrap().clone();
        assert_eq!(first, r.reserves[0]);
        called.insert(first.expert_id);
        assert_eq!(next_reserve(&r, "civil", &called).unwrap(), &r.reserves[1]);
        called.extend(r.reserves.iter().map(|s| s.expert_id.clone()));
        assert_eq!(next_reserve(&r, "civil", &called), None);
        assert_eq!(next_reserve(&r, "cost", &BTreeSet::new()), None);
    }

    #[test]
    fn the_seed_commitment_binds_the_seed() {
        assert_ne!(seed_commitment(&seed(1)), seed_commitment(&seed(2)));
        assert_eq!(seed_commitment(&seed(1)).len(), 64);
    }
}
