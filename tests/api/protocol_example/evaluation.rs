//! §14.7's worked example: an evaluation computed with the platform's code
//! from fixed inputs — the draw from §14.2's seed over a pool of thirteen
//! experts at two centres (five of them in conflict), the K coefficient,
//! the qualification, the price scores, the panel's trimmed means, an
//! outlier and the ranking, and one signed score statement.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use kaibiao::crypto::{jcs, sha256_hex};
use kaibiao::domain::decimal::{Money, Points, Ratio};
use kaibiao::domain::evaluation::{
    Aggregation, Benchmark, CriterionItem, EvaluationMethod, EvaluationSpec, ItemKind, PriceFormula,
};
use kaibiao::evaluation::draw::{self, DrawRequest, Parties, PoolEntry, Requirement, Snapshot};
use kaibiao::evaluation::scoring::{self, BidIn, EvalInput, ItemScore, Vote};
use kaibiao::evaluation::statements::{sign_statement, ScoreStatement, SCORE_LABEL};

use super::{assert_shown, seed, shown_value};

const SECTION: &str = "sec_00000000000000000000000000000001";
const TENDERER: &str = "914403001234567890";
/// (letter, credit code, price): the five bidders in the record's order.
const BIDDERS: [(&str, &str, &str); 5] = [
    ("A", "91440300MA5ALPHA01", "9000000.00"),
    ("B", "91440300MA5BRAVO02", "9500000.00"),
    ("C", "91440300MA5CHRLI03", "10000000.00"),
    ("D", "91440300MA5DELTA04", "11000000.00"),
    ("E", "91440300MA5ECHOO05", "8000000.00"),
];
/// Each member's (technical, business) points for A–D, members in the
/// draw's order.
const SCORES: [[(u32, u32); 5]; 4] = [
    [(30, 15), (32, 16), (31, 15), (29, 14), (33, 17)],
    [(35, 18), (34, 17), (36, 18), (35, 18), (20, 10)],
    [(28, 12), (27, 13), (29, 12), (30, 13), (28, 12)],
    [(38, 19), (37, 19), (38, 18), (39, 19), (37, 18)],
];

fn org(letter: &str) -> String {
    format!(
        "org_0000000000000000000000000000000{}",
        letter.to_lowercase()
    )
}

fn bid(letter: &str) -> String {
    letter.to_lowercase().repeat(64)
}

fn expert(id: &str, specialties: &[&str], employer: &str) -> PoolEntry {
    PoolEntry {
        expert_id: id.into(),
        centre: if id.starts_with("GZ") {
            "GZ-GGZY"
        } else {
            "SZ-GGZY"
        }
        .into(),
        specialties: specialties.iter().map(|s| s.to_string()).collect(),
        employer: employer.into(),
        related_orgs: vec![],
        related_people: vec![],
    }
}

fn pts(n: u32) -> Points {
    Points::from_hundredths(n as i64 * 100)
}

#[test]
fn the_worked_example_of_an_evaluation() {
    let mut shown: Vec<(String, String)> = Vec::new();
    let person = draw::party_digest("bidder-e@example.com");
    let mut pool = vec![
        expert("GZ-0001", &["A01"], "91440100EMPLOYER01"),
        expert("GZ-0002", &["A01"], TENDERER),
        expert("GZ-0003", &["A01", "B02"], "91440100EMPLOYER03"),
        expert("GZ-0004", &["B02"], "91440100EMPLOYER04"),
        expert("GZ-0005", &["B02"], "91440100EMPLOYER05"),
        expert("SZ-0001", &["A01"], "91440300EMPLOYER11"),
        expert("SZ-0002", &["A01"], "91440300EMPLOYER12"),
        expert("SZ-0003", &["B02"], "91440300EMPLOYER13"),
        expert("SZ-0004", &["A01"], "91440300EMPLOYER14"),
        expert("SZ-0005", &["B02"], BIDDERS[2].1),
        expert("SZ-0006", &["C03"], TENDERER),
        expert("SZ-0007", &["B02", "A01"], "91440300EMPLOYER17"),
        expert("SZ-0008", &["B02"], "91440300EMPLOYER18"),
    ];
    pool[3].related_people = vec![person.clone()];
    pool[6].related_orgs = vec![BIDDERS[1].1.into()];
    pool[8].related_orgs = vec![TENDERER.into()];
    let snapshot = Snapshot::new(pool);
    let parties = Parties {
        tenderer: TENDERER.into(),
        bidders: BIDDERS.iter().map(|b| b.1.to_string()).collect(),
        bidder_ids: BIDDERS
            .iter()
            .map(|b| (org(b.0), b.1.to_string()))
            .collect(),
        bidder_people: vec![person.clone()],
    };
    let request = DrawRequest {
        requirements: vec![
            Requirement {
                specialty: "A01".into(),
                count: 3,
                reserves: 1,
            },
            Requirement {
                specialty: "B02".into(),
                count: 2,
                reserves: 1,
            },
        ],
        centres: vec!["GZ-GGZY".into(), "SZ-GGZY".into()],
        tenderer_representatives: 0,
    };
    let seed_hex = shown_value("draw seed");
    let draw_seed: [u8; 32] = hex::decode(&seed_hex).unwrap().try_into().unwrap();
    let result = draw::draw(&request, &parties, &snapshot, &draw_seed).unwrap();
    shown.push(("person digest".into(), person));
    shown.push(("snapshot".into(), text(&snapshot)));
    shown.push(("snapshot hash".into(), snapshot.hash()));
    shown.push(("parties".into(), text(&parties)));
    shown.push((
        "parties hash".into(),
        sha256_hex(&jcs::to_vec(&parties).unwrap()),
    ));
    shown.push(("draw".into(), text(&result)));

    // The K coefficient, then the evaluation by the members in the draw's
    // order.
    let k_candidates: Vec<Ratio> = ["0.95", "0.97", "1.00"]
        .iter()
        .map(|k| Ratio::parse(k).unwrap())
        .collect();
    let k = draw::k_for(&draw_seed, &k_candidates).unwrap();
    shown.push(("k".into(), k.to_string()));
    let item = |id: &str, name: &str, kind, max| CriterionItem {
        id: id.into(),
        name: name.into(),
        kind,
        max_points: pts(max),
    };
    let spec = EvaluationSpec {
        method: EvaluationMethod::Comprehensive,
        items: vec![
            item("tech", "技术标", ItemKind::Technical, 40),
            item("biz", "商务标", ItemKind::Business, 20),
            item("price", "报价", ItemKind::Price, 40),
        ],
        price: Some(PriceFormula {
            benchmark: Benchmark::TrimmedMean,
            trim: 1,
            k_coefficients: k_candidates,
            deduct_above_per_pct: pts(1),
            deduct_below_per_pct: Points::from_hundredths(50),
        }),
        aggregation: Aggregation {
            trim_when_at_least: 5,
            outlier_points: pts(10),
        },
    };
    let panel: Vec<String> = result.members.iter().map(|s| s.expert_id.clone()).collect();
    let mut votes = Vec::new();
    for (letter, _, _) in BIDDERS {
        for (i, e) in panel.iter().enumerate() {
            let fail = letter == "E" && i < 3;
            votes.push(Vote {
                expert: e.clone(),
                bid: bid(letter),
                pass: !fail,
                reason: fail.then(|| "营业执照已过期".to_string()),
            });
        }
    }
    let mut scores = Vec::new();
    for (b, row) in SCORES.iter().enumerate() {
        for (e, (tech, biz)) in panel.iter().zip(row) {
            for (item, points) in [("tech", tech), ("biz", biz)] {
                scores.push(ItemScore {
                    expert: e.clone(),
                    bid: bid(BIDDERS[b].0),
                    item: item.into(),
                    points: pts(*points),
                });
            }
        }
    }
    let input = EvalInput {
        spec,
        k: Some(k),
        panel: panel.clone(),
        bids: BIDDERS
            .iter()
            .enumerate()
            .map(|(i, (letter, _, price))| BidIn {
                bid: bid(letter),
                bidder: org(letter),
                price: Money::parse(price).unwrap(),
                order: i as u32 + 1,
            })
            .collect(),
        votes,
        scores,
    };
    let outcome = scoring::evaluate(&input).unwrap();
    let letter_of = |h: &str| BIDDERS.iter().find(|b| bid(b.0) == h).unwrap().0;
    let qualified: Vec<String> = outcome
        .qualification
        .iter()
        .map(|q| format!("{} {}/{}", letter_of(&q.bid), q.passes, q.fails))
        .collect();
    shown.push(("qualification".into(), qualified.join(", ")));
    shown.push(("benchmark".into(), outcome.benchmark.unwrap().to_string()));
    for r in &outcome.ranking {
        let l = letter_of(&r.bid);
        shown.push((
            format!("price score {l}"),
            r.price_score.unwrap().to_string(),
        ));
        let totals: BTreeMap<usize, Points> = r
            .expert_totals
            .iter()
            .map(|(e, t)| (panel.iter().position(|p| p == e).unwrap(), *t))
            .collect();
        let totals: Vec<String> = totals.values().map(|t| t.to_string()).collect();
        shown.push((format!("totals {l}"), totals.join(", ")));
        shown.push((format!("panel score {l}"), r.panel_score.to_string()));
        shown.push((format!("final score {l}"), r.final_score.to_string()));
    }
    let ranking: Vec<&str> = outcome.ranking.iter().map(|r| letter_of(&r.bid)).collect();
    shown.push(("ranking".into(), ranking.join(", ")));
    let outliers: Vec<String> = outcome
        .outliers
        .iter()
        .map(|o| {
            let m = panel.iter().position(|p| *p == o.expert).unwrap() + 1;
            format!(
                "member {m} on {} ({} against {})",
                letter_of(&o.bid),
                o.total,
                o.median
            )
        })
        .collect();
    shown.push(("outliers".into(), outliers.join(", ")));

    // One of the statements behind it: member 1's technical score for A,
    // signed with its pass key.
    let pass_key = SigningKey::from_bytes(&seed("example expert pass key"));
    let st = ScoreStatement {
        section_id: SECTION.into(),
        expert_id: panel[0].clone(),
        bid: bid("A"),
        item: "tech".into(),
        points: pts(SCORES[0][0].0),
    };
    shown.push((
        "pass key".into(),
        hex::encode(pass_key.verifying_key().as_bytes()),
    ));
    shown.push(("score statement".into(), text(&st)));
    shown.push((
        "score signature".into(),
        sign_statement(&pass_key, SCORE_LABEL, &st),
    ));
    assert_shown(&shown);
}

fn text<T: serde::Serialize>(v: &T) -> String {
    String::from_utf8(jcs::to_vec(v).unwrap()).unwrap()
}
