//! The arithmetic of an evaluation (PROTOCOL.md §14): qualification by
//! majority, the price score by the section's declared formula, each expert's
//! total, the panel's aggregate (trimmed when the panel is large enough), the
//! outlier flags and the ranking. Integer arithmetic throughout: money in fen,
//! points in hundredths, ratios in ten-thousandths, every division rounded
//! half up — so the service and `kaibiao verify` cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::decimal::{Money, Points, Ratio};
use crate::domain::evaluation::{
    Benchmark, EvaluationMethod, EvaluationSpec, ItemKind, PriceFormula,
};

/// `n / d` rounded half up, for `n ≥ 0`, `d > 0`.
fn div_half_up(n: i128, d: i128) -> i128 {
    debug_assert!(n >= 0 && d > 0);
    (2 * n + d) / (2 * d)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoringError {
    #[error("no valid price to take a benchmark from")]
    NoPrices,
    #[error("the benchmark is zero")]
    ZeroBenchmark,
    #[error("{0}")]
    Incomplete(String),
    #[error("{0}")]
    Invalid(String),
}

/// The benchmark price (评标基准价) of the declared formula over the valid
/// prices. Trimmed mean: when more than `2 × trim` valid prices exist, the
/// `trim` lowest and `trim` highest are dropped; the mean is rounded half up
/// to the fen, then multiplied by K (when one was drawn) and rounded again.
pub fn benchmark(
    f: &PriceFormula,
    prices: &[Money],
    k: Option<Ratio>,
) -> Result<Money, ScoringError> {
    if prices.is_empty() {
        return Err(ScoringError::NoPrices);
    }
    let mut p: Vec<i64> = prices.iter().map(|m| m.fen()).collect();
    p.sort_unstable();
    let b = match f.benchmark {
        Benchmark::Lowest => p[0],
        Benchmark::TrimmedMean => {
            let t = f.trim as usize;
            let kept = if p.len() > 2 * t {
                &p[t..p.len() - t]
            } else {
                &p[..]
            };
            let sum: i128 = kept.iter().map(|&v| v as i128).sum();
            let mean = div_half_up(sum, kept.len() as i128);
            let k = k.map(|k| k.units() as i128).unwrap_or(Ratio::SCALE as i128);
            div_half_up(mean * k, Ratio::SCALE as i128) as i64
        }
    };
    if b == 0 {
        return Err(ScoringError::ZeroBenchmark);
    }
    Ok(Money::from_fen(b))
}

/// The price score: the item's maximum, less `deduct_above_per_pct` for each
/// 1 % the price lies above the benchmark (or `deduct_below_per_pct` below),
/// proportionally for fractions of a percent, rounded half up to the
/// hundredth; never below zero.
pub fn price_score(f: &PriceFormula, max: Points, benchmark: Money, price: Money) -> Points {
    let (b, p) = (benchmark.fen() as i128, price.fen() as i128);
    let per = if p >= b {
        f.deduct_above_per_pct.units()
    } else {
        f.deduct_below_per_pct.units()
    } as i128;
    // deduction (hundredths) = per (hundredths per %) × |p − b| / b × 100
    let deduction = div_half_up(per * (p - b).abs() * 100, b);
    let s = (max.units() as i128 - deduction).max(0);
    Points::from_hundredths(s as i64)
}

/// The panel's aggregate of the experts' totals for one bid: the mean,
/// after dropping one highest and one lowest when at least
/// `trim_when_at_least` experts scored; rounded half up.
pub fn aggregate(totals: &[Points], trim_when_at_least: u32) -> Points {
    let mut v: Vec<i64> = totals.iter().map(|p| p.units()).collect();
    v.sort_unstable();
    let kept = if v.len() >= trim_when_at_least as usize && v.len() >= 3 {
        &v[1..v.len() - 1]
    } else {
        &v[..]
    };
    if kept.is_empty() {
        return Points::ZERO;
    }
    let sum: i128 = kept.iter().map(|&x| x as i128).sum();
    Points::from_hundredths(div_half_up(sum, kept.len() as i128) as i64)
}

/// The median of the totals (the mean of the middle two for an even count,
/// rounded half up).
pub fn median(totals: &[Points]) -> Points {
    let mut v: Vec<i64> = totals.iter().map(|p| p.units()).collect();
    v.sort_unstable();
    match v.len() {
        0 => Points::ZERO,
        n if n % 2 == 1 => Points::from_hundredths(v[n / 2]),
        n => Points::from_hundredths(div_half_up((v[n / 2 - 1] + v[n / 2]) as i128, 2) as i64),
    }
}

/// Whether a total lies further than `threshold` from the median.
pub fn is_outlier(total: Points, median: Points, threshold: Points) -> bool {
    (total.units() - median.units()).abs() > threshold.units()
}

// ------------------------------------------------------------ a whole evaluation

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidIn {
    /// The bid's envelope hash.
    pub bid: String,
    pub bidder: String,
    pub price: Money,
    /// Its place in the opening record (ties are broken by it last).
    pub order: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub expert: String,
    pub bid: String,
    pub pass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemScore {
    pub expert: String,
    pub bid: String,
    pub item: String,
    pub points: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalInput {
    pub spec: EvaluationSpec,
    /// The K coefficient drawn at the opening, if the formula has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<Ratio>,
    /// The experts seated at the end (reserves who replaced members included).
    pub panel: Vec<String>,
    pub bids: Vec<BidIn>,
    pub votes: Vec<Vote>,
    #[serde(default)]
    pub scores: Vec<ItemScore>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Qualification {
    pub bid: String,
    pub passes: u32,
    pub fails: u32,
    pub qualified: bool,
    /// The reasons of the experts who failed it (否决 reasons), in panel order.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BidResult {
    pub bid: String,
    pub bidder: String,
    pub price: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_score: Option<Points>,
    /// Each expert's total of the items they score (price excluded).
    pub expert_totals: BTreeMap<String, Points>,
    pub panel_score: Points,
    pub final_score: Points,
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outlier {
    pub expert: String,
    pub bid: String,
    pub total: Points,
    pub median: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvalOutcome {
    pub qualification: Vec<Qualification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<Money>,
    /// Qualified bids, best first.
    pub ranking: Vec<BidResult>,
    /// Up to three candidates (中标候选人), best first.
    pub candidates: Vec<String>,
    pub outliers: Vec<Outlier>,
}

/// Qualification (资格审查): a bid passes when more than half of the panel
/// passes it. Every panel member must have voted on every bid, and a fail
/// must give a reason.
pub fn qualify(
    panel: &[String],
    bids: &[BidIn],
    votes: &[Vote],
) -> Result<Vec<Qualification>, ScoringError> {
    let mut by: BTreeMap<(&str, &str), &Vote> = BTreeMap::new();
    for v in votes {
        if by.insert((v.bid.as_str(), v.expert.as_str()), v).is_some() {
            return Err(ScoringError::Invalid(format!(
                "expert {} voted twice on bid {}",
                v.expert, v.bid
            )));
        }
    }
    let mut out = Vec::new();
    for b in bids {
        let (mut passes, mut fails, mut reasons) = (0, 0, Vec::new());
        for e in panel {
            let v = by.get(&(b.bid.as_str(), e.as_str())).ok_or_else(|| {
                ScoringError::Incomplete(format!("expert {e} has not reviewed bid {}", b.bid))
            })?;
            if v.pass {
                passes += 1;
            } else {
                fails += 1;
                match v.reason.as_deref().map(str::trim) {
                    Some(r) if !r.is_empty() => reasons.push(r.to_string()),
                    _ => {
                        return Err(ScoringError::Invalid(format!(
                            "expert {e} failed bid {} without a reason",
                            b.bid
                        )))
                    }
                }
            }
        }
        out.push(Qualification {
            bid: b.bid.clone(),
            passes,
            fails,
            qualified: passes * 2 > panel.len() as u32,
            reasons,
        });
    }
    Ok(out)
}

/// The whole computation from what the record holds.
pub fn evaluate(input: &EvalInput) -> Result<EvalOutcome, ScoringError> {
    let spec = &input.spec;
    let panel: BTreeSet<&str> = input.panel.iter().map(String::as_str).collect();
    if panel.len() != input.panel.len() || panel.is_empty() {
        return Err(ScoringError::Invalid(
            "the panel is empty or names an expert twice".into(),
        ));
    }
    let qualification = qualify(&input.panel, &input.bids, &input.votes)?;
    let qualified: Vec<&BidIn> = input
        .bids
        .iter()
        .zip(&qualification)
        .filter(|(_, q)| q.qualified)
        .map(|(b, _)| b)
        .collect();
    let qualified_ids: BTreeSet<&str> = qualified.iter().map(|b| b.bid.as_str()).collect();

    let mut ranking = Vec::new();
    let mut outliers = Vec::new();
    let mut benchmark_price = None;
    match spec.method {
        EvaluationMethod::LowestPrice => {
            if let Some(s) = input.scores.first() {
                return Err(ScoringError::Invalid(format!(
                    "the lowest-price method takes no scores (expert {} scored)",
                    s.expert
                )));
            }
            for b in &qualified {
                ranking.push(BidResult {
                    bid: b.bid.clone(),
                    bidder: b.bidder.clone(),
                    price: b.price,
                    price_score: None,
                    expert_totals: BTreeMap::new(),
                    panel_score: Points::ZERO,
                    final_score: Points::ZERO,
                    rank: 0,
                });
            }
            ranking.sort_by(|a, b| {
                a.price
                    .cmp(&b.price)
                    .then(order_of(input, a).cmp(&order_of(input, b)))
            });
        }
        EvaluationMethod::Comprehensive => {
            let items: BTreeMap<&str, _> = spec
                .items
                .iter()
                .filter(|i| i.kind != ItemKind::Price)
                .map(|i| (i.id.as_str(), i))
                .collect();
            let price_item = spec.items.iter().find(|i| i.kind == ItemKind::Price);
            let mut cell: BTreeMap<(&str, &str, &str), Points> = BTreeMap::new();
            for s in &input.scores {
                let item = items.get(s.item.as_str()).ok_or_else(|| {
                    ScoringError::Invalid(format!("{} is not an item the experts score", s.item))
                })?;
                if !panel.contains(s.expert.as_str()) {
                    return Err(ScoringError::Invalid(format!(
                        "{} is not on the panel",
                        s.expert
                    )));
                }
                if !qualified_ids.contains(s.bid.as_str()) {
                    return Err(ScoringError::Invalid(format!(
                        "bid {} is not qualified",
                        s.bid
                    )));
                }
                if s.points < Points::ZERO || s.points > item.max_points {
                    return Err(ScoringError::Invalid(format!(
                        "{} points for {} lie outside 0–{}",
                        s.points, s.item, item.max_points
                    )));
                }
                if cell
                    .insert(
                        (s.bid.as_str(), s.expert.as_str(), s.item.as_str()),
                        s.points,
                    )
                    .is_some()
                {
                    return Err(ScoringError::Invalid(format!(
                        "expert {} scored {} of bid {} twice",
                        s.expert, s.item, s.bid
                    )));
                }
            }
            if let (Some(f), Some(_)) = (&spec.price, price_item) {
                if !qualified.is_empty() {
                    let prices: Vec<Money> = qualified.iter().map(|b| b.price).collect();
                    benchmark_price = Some(benchmark(f, &prices, input.k)?);
                }
            }
            for b in &qualified {
                let mut totals = BTreeMap::new();
                for e in &input.panel {
                    let mut t = 0i64;
                    for id in items.keys() {
                        let p = cell.get(&(b.bid.as_str(), e.as_str(), id)).ok_or_else(|| {
                            ScoringError::Incomplete(format!(
                                "expert {e} has not scored {id} of bid {}",
                                b.bid
                            ))
                        })?;
                        t += p.units();
                    }
                    totals.insert(e.clone(), Points::from_hundredths(t));
                }
                let values: Vec<Points> = totals.values().copied().collect();
                let med = median(&values);
                for (e, t) in &totals {
                    if is_outlier(*t, med, spec.aggregation.outlier_points) {
                        outliers.push(Outlier {
                            expert: e.clone(),
                            bid: b.bid.clone(),
                            total: *t,
                            median: med,
                        });
                    }
                }
                let panel_score = aggregate(&values, spec.aggregation.trim_when_at_least);
                let price_score = match (&spec.price, price_item, benchmark_price) {
                    (Some(f), Some(item), Some(bm)) => {
                        Some(price_score(f, item.max_points, bm, b.price))
                    }
                    _ => None,
                };
                let final_score = Points::from_hundredths(
                    panel_score.units() + price_score.map(|p| p.units()).unwrap_or(0),
                );
                ranking.push(BidResult {
                    bid: b.bid.clone(),
                    bidder: b.bidder.clone(),
                    price: b.price,
                    price_score,
                    expert_totals: totals,
                    panel_score,
                    final_score,
                    rank: 0,
                });
            }
            ranking.sort_by(|a, b| {
                b.final_score
                    .cmp(&a.final_score)
                    .then(a.price.cmp(&b.price))
                    .then(order_of(input, a).cmp(&order_of(input, b)))
            });
        }
    }
    for (i, r) in ranking.iter_mut().enumerate() {
        r.rank = i as u32 + 1;
    }
    let candidates = ranking.iter().take(3).map(|r| r.bid.clone()).collect();
    Ok(EvalOutcome {
        qualification,
        benchmark: benchmark_price,
        ranking,
        candidates,
        outliers,
    })
}

fn order_of(input: &EvalInput, r: &BidResult) -> u32 {
    input
        .bids
        .iter()
        .find(|b| b.bid == r.bid)
        .map(|b| b.order)
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuan(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn pts(s: &str) -> Points {
        Points::parse(s).unwrap()
    }

    fn formula(benchmark: Benchmark, trim: u32, above: &str, below: &str) -> PriceFormula {
        PriceFormula {
            benchmark,
            trim,
            k_coefficients: vec![],
            deduct_above_per_pct: pts(above),
            deduct_below_per_pct: pts(below),
        }
    }

    /// Worked example 1 (PROTOCOL.md §14.2): lowest valid price as benchmark.
    #[test]
    fn lowest_price_benchmark_worked_example() {
        let f = formula(Benchmark::Lowest, 0, "1", "0");
        let prices = [yuan("1000000.00"), yuan("980000.00"), yuan("1050000.00")];
        let b = benchmark(&f, &prices, None).unwrap();
        assert_eq!(b, yuan("980000.00"));
        let max = pts("40");
        // 20,000 above 980,000 = 2.0408 % → 2.04 points deducted.
        assert_eq!(price_score(&f, max, b, prices[0]), pts("37.96"));
        assert_eq!(price_score(&f, max, b, prices[1]), pts("40.00"));
        // 70,000 above = 7.1429 % → 7.14.
        assert_eq!(price_score(&f, max, b, prices[2]), pts("32.86"));
    }

    /// Worked example 2: trimmed mean × K, deductions above and below.
    #[test]
    fn trimmed_mean_with_k_worked_example() {
        let f = formula(Benchmark::TrimmedMean, 1, "1", "0.5");
        let prices = [yuan("90"), yuan("95"), yuan("100"), yuan("110")];
        // Drop 90 and 110: mean 97.50; × 0.97 = 94.575 → 94.58 (half up).
        let k = Some(Ratio::parse("0.97").unwrap());
        let b = benchmark(&f, &prices, k).unwrap();
        assert_eq!(b, yuan("94.58"));
        let max = pts("40");
        assert_eq!(price_score(&f, max, b, yuan("100")), pts("34.27")); // 5.7306 % above
        assert_eq!(price_score(&f, max, b, yuan("95")), pts("39.56")); // 0.4441 % above
        assert_eq!(price_score(&f, max, b, yuan("110")), pts("23.70")); // 16.3037 % above
        assert_eq!(price_score(&f, max, b, yuan("90")), pts("37.58")); // 4.8425 % below × 0.5
                                                                       // Without K the benchmark is the trimmed mean itself.
        assert_eq!(benchmark(&f, &prices, None).unwrap(), yuan("97.50"));
    }

    #[test]
    fn trimming_needs_more_than_twice_trim_prices() {
        let f = formula(Benchmark::TrimmedMean, 1, "1", "1");
        // Two prices, trim 1: nothing is dropped.
        assert_eq!(
            benchmark(&f, &[yuan("100"), yuan("101")], None).unwrap(),
            yuan("100.50")
        );
        // Three: the middle one alone.
        assert_eq!(
            benchmark(&f, &[yuan("100"), yuan("101"), yuan("200")], None).unwrap(),
            yuan("101")
        );
        assert_eq!(benchmark(&f, &[], None), Err(ScoringError::NoPrices));
        // Mean rounded half up to the fen: (1.00 + 1.01) / 2 = 1.005 → 1.01.
        let f0 = formula(Benchmark::TrimmedMean, 0, "1", "1");
        assert_eq!(
            benchmark(&f0, &[yuan("1.00"), yuan("1.01")], None).unwrap(),
            yuan("1.01")
        );
    }

    #[test]
    fn price_scores_round_half_up_and_never_go_below_zero() {
        let f = formula(Benchmark::Lowest, 0, "0.5", "0.5");
        // 0.01 % above at 0.50 per % = 0.005 points → 0.01.
        assert_eq!(
            price_score(&f, pts("40"), yuan("100.00"), yuan("100.01")),
            pts("39.99")
        );
        let steep = formula(Benchmark::Lowest, 0, "1", "1");
        assert_eq!(
            price_score(&steep, pts("40"), yuan("100"), yuan("200")),
            Points::ZERO
        );
    }

    #[test]
    fn aggregation_trims_when_the_panel_is_large_enough() {
        let t: Vec<Points> = ["40", "60", "61", "62", "90"]
            .iter()
            .map(|s| pts(s))
            .collect();
        assert_eq!(aggregate(&t, 7), pts("62.60")); // 313 / 5
        assert_eq!(aggregate(&t, 5), pts("61.00")); // drop 40 and 90: 183 / 3
                                                    // Rounded half up: 30.02 / 3 = 10.00667 → 10.01.
        let r: Vec<Points> = ["10.00", "10.01", "10.01"].iter().map(|s| pts(s)).collect();
        assert_eq!(aggregate(&r, 7), pts("10.01"));
    }

    #[test]
    fn outliers_lie_strictly_further_than_the_threshold_from_the_median() {
        let t: Vec<Points> = ["50", "52", "55", "80", "49"]
            .iter()
            .map(|s| pts(s))
            .collect();
        let m = median(&t);
        assert_eq!(m, pts("52"));
        assert!(is_outlier(pts("80"), m, pts("20")));
        assert!(
            !is_outlier(pts("72"), m, pts("20")),
            "exactly the threshold is not an outlier"
        );
        assert!(is_outlier(pts("31.99"), m, pts("20")));
        assert_eq!(median(&[pts("10"), pts("11")]), pts("10.50"));
    }

    fn bid(id: &str, price: &str, order: u32) -> BidIn {
        BidIn {
            bid: id.into(),
            bidder: format!("org-{id}"),
            price: yuan(price),
            order,
        }
    }

    fn vote(expert: &str, bid: &str, pass: bool) -> Vote {
        Vote {
            expert: expert.into(),
            bid: bid.into(),
            pass,
            reason: (!pass).then(|| format!("{expert}: 资质证书过期")),
        }
    }

    fn panel() -> Vec<String> {
        (1..=5).map(|i| format!("X{i}")).collect()
    }

    #[test]
    fn qualification_is_by_majority_of_the_panel() {
        let bids = [bid("a", "1", 0), bid("b", "1", 1)];
        let mut votes = Vec::new();
        for (i, e) in panel().iter().enumerate() {
            votes.push(vote(e, "a", i < 3)); // 3 of 5 pass
            votes.push(vote(e, "b", i < 2)); // 2 of 5 pass
        }
        let q = qualify(&panel(), &bids, &votes).unwrap();
        assert!(q[0].qualified && q[0].passes == 3);
        assert!(!q[1].qualified);
        assert_eq!(
            q[1].reasons,
            ["X3: 资质证书过期", "X4: 资质证书过期", "X5: 资质证书过期"]
        );
        // A missing review and a fail without a reason are refused.
        let e = qualify(&panel(), &bids, &votes[1..]).unwrap_err();
        assert!(matches!(e, ScoringError::Incomplete(_)), "{e}");
        let mut silent = votes.clone();
        silent[9].reason = Some("  ".into());
        assert!(matches!(
            qualify(&panel(), &bids, &silent),
            Err(ScoringError::Invalid(_))
        ));
        let mut twice = votes.clone();
        twice.push(votes[0].clone());
        assert!(matches!(
            qualify(&panel(), &bids, &twice),
            Err(ScoringError::Invalid(_))
        ));
    }

    fn spec() -> EvaluationSpec {
        serde_json::from_value(serde_json::json!({
            "method": "comprehensive",
            "items": [
                {"id": "price", "name": "投标报价", "kind": "price", "max_points": "40"},
                {"id": "tech", "name": "技术方案", "kind": "technical", "max_points": "45"},
                {"id": "biz", "name": "商务", "kind": "business", "max_points": "15"}
            ],
            "price": {"benchmark": "lowest", "deduct_above_per_pct": "1", "deduct_below_per_pct": "0"},
            "aggregation": {"trim_when_at_least": 5, "outlier_points": "20"}
        }))
        .unwrap()
    }

    /// Worked example 3: a whole comprehensive evaluation, by hand.
    #[test]
    fn a_whole_evaluation_worked_example() {
        let bids = vec![
            bid("a", "1000000.00", 0),
            bid("b", "980000.00", 1),
            bid("c", "1050000.00", 2),
            bid("d", "900000.00", 3), // rejected at qualification
        ];
        let mut votes = Vec::new();
        let mut scores = Vec::new();
        let tech = [
            ("a", ["40", "41", "42", "39", "10"]), // X5 is an outlier on a
            ("b", ["30", "31", "32", "33", "34"]),
            ("c", ["44", "44", "44", "44", "44"]),
        ];
        for (i, e) in panel().iter().enumerate() {
            for b in ["a", "b", "c"] {
                votes.push(vote(e, b, true));
            }
            votes.push(vote(e, "d", i == 0));
            for (b, t) in &tech {
                scores.push(ItemScore {
                    expert: e.clone(),
                    bid: b.to_string(),
                    item: "tech".into(),
                    points: pts(t[i]),
                });
                scores.push(ItemScore {
                    expert: e.clone(),
                    bid: b.to_string(),
                    item: "biz".into(),
                    points: pts("10"),
                });
            }
        }
        let input = EvalInput {
            spec: spec(),
            k: None,
            panel: panel(),
            bids,
            votes,
            scores,
        };
        let out = evaluate(&input).unwrap();
        assert!(!out.qualification[3].qualified);
        // Benchmark: the lowest *valid* price (d's 900,000 is not valid).
        assert_eq!(out.benchmark, Some(yuan("980000.00")));
        let r: BTreeMap<_, _> = out.ranking.iter().map(|r| (r.bid.as_str(), r)).collect();
        // a: totals 50 51 52 49 20 → trimmed (drop 20, 52) → 150/3 = 50.00; price 37.96.
        assert_eq!(r["a"].panel_score, pts("50.00"));
        assert_eq!(r["a"].price_score, Some(pts("37.96")));
        assert_eq!(r["a"].final_score, pts("87.96"));
        // b: 40 41 42 43 44 → 41 42 43 → 42.00; price 40.00.
        assert_eq!(r["b"].final_score, pts("82.00"));
        // c: 54 × 5 → 54.00; price 32.86.
        assert_eq!(r["c"].final_score, pts("86.86"));
        let order: Vec<_> = out.ranking.iter().map(|r| r.bid.as_str()).collect();
        assert_eq!(order, ["a", "c", "b"]);
        assert_eq!(out.candidates, ["a", "c", "b"]);
        assert_eq!(out.ranking[0].rank, 1);
        assert_eq!(
            out.outliers,
            [Outlier {
                expert: "X5".into(),
                bid: "a".into(),
                total: pts("20"),
                median: pts("50")
            }]
        );
    }

    #[test]
    fn scores_outside_the_rules_are_refused() {
        let bids = vec![bid("a", "100", 0)];
        let votes: Vec<Vote> = panel().iter().map(|e| vote(e, "a", true)).collect();
        let mut scores = Vec::new();
        for e in panel() {
            scores.push(ItemScore {
                expert: e.clone(),
                bid: "a".into(),
                item: "tech".into(),
                points: pts("45"),
            });
            scores.push(ItemScore {
                expert: e,
                bid: "a".into(),
                item: "biz".into(),
                points: pts("15"),
            });
        }
        let base = EvalInput {
            spec: spec(),
            k: None,
            panel: panel(),
            bids,
            votes,
            scores,
        };
        assert!(evaluate(&base).is_ok());
        let bad = |f: &dyn Fn(&mut EvalInput)| {
            let mut i = base.clone();
            f(&mut i);
            evaluate(&i).unwrap_err()
        };
        assert!(bad(&|i| i.scores[0].points = pts("45.01"))
            .to_string()
            .contains("outside 0–45.00"));
        assert!(bad(&|i| i.scores[0].points = pts("-0.01"))
            .to_string()
            .contains("outside"));
        assert!(bad(&|i| i.scores[0].item = "price".into())
            .to_string()
            .contains("not an item"));
        assert!(bad(&|i| i.scores[0].expert = "X9".into())
            .to_string()
            .contains("not on the panel"));
        assert!(matches!(
            bad(&|i| {
                i.scores.pop();
            }),
            ScoringError::Incomplete(_)
        ));
    }

    #[test]
    fn ties_go_to_the_lower_price_then_the_earlier_bid() {
        let mut s = spec();
        s.method = EvaluationMethod::LowestPrice;
        s.items.clear();
        s.price = None;
        let bids = vec![bid("a", "100", 0), bid("b", "90", 1), bid("c", "90", 2)];
        let votes = panel()
            .iter()
            .flat_map(|e| ["a", "b", "c"].map(|b| vote(e, b, true)))
            .collect();
        let out = evaluate(&EvalInput {
            spec: s,
            k: None,
            panel: panel(),
            bids,
            votes,
            scores: vec![],
        })
        .unwrap();
        let order: Vec<_> = out.ranking.iter().map(|r| r.bid.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
    }
}
