//! Evaluation methods and criteria, declared as data in each section and
//! published with it, so every score can later be recomputed from the record.

use serde::{Deserialize, Serialize};

use super::decimal::{Points, Ratio};
use super::problems::Problems;
use crate::text_enum;

text_enum! {
    pub enum EvaluationMethod {
        /// 综合评估法: weighted points, price included.
        Comprehensive = "comprehensive",
        /// 经评审的最低投标价法: qualified bids ranked by price.
        LowestPrice = "lowest_price",
    }
}

text_enum! {
    pub enum ItemKind {
        Price = "price",
        Technical = "technical",
        Business = "business",
        Credit = "credit",
    }
}

text_enum! {
    pub enum Benchmark {
        /// The lowest valid price is the benchmark (最低价基准).
        Lowest = "lowest",
        /// The mean of valid prices after dropping the highest and lowest
        /// (去掉最高最低的算术平均), optionally times a K coefficient.
        TrimmedMean = "trimmed_mean",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionItem {
    pub id: String,
    pub name: String,
    pub kind: ItemKind,
    pub max_points: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceFormula {
    pub benchmark: Benchmark,
    /// Trimmed mean: how many of the highest and of the lowest valid prices
    /// are dropped (each), when more than `2 × trim` valid prices exist.
    #[serde(default)]
    pub trim: u32,
    /// Candidate K coefficients; one is drawn at the opening. Empty means K = 1.
    #[serde(default)]
    pub k_coefficients: Vec<Ratio>,
    /// Points deducted per 1 % that a price lies above the benchmark.
    pub deduct_above_per_pct: Points,
    /// Points deducted per 1 % that a price lies below the benchmark.
    pub deduct_below_per_pct: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// With at least this many experts, each bid's highest and lowest total
    /// are dropped before the mean.
    pub trim_when_at_least: u32,
    /// An expert whose total for a bid lies further than this many points
    /// from the panel's median is flagged and must confirm with a reason.
    pub outlier_points: Points,
}

impl Default for Aggregation {
    fn default() -> Self {
        Self {
            trim_when_at_least: 7,
            outlier_points: Points::from_hundredths(2_000), // 20.00 points
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    pub method: EvaluationMethod,
    #[serde(default)]
    pub items: Vec<CriterionItem>,
    #[serde(default)]
    pub price: Option<PriceFormula>,
    #[serde(default)]
    pub aggregation: Aggregation,
}

impl EvaluationSpec {
    /// Records every problem under `prefix` (e.g. `evaluation`).
    pub fn validate(&self, prefix: &str, p: &mut Problems) {
        let hundred = Points::from_hundredths(10_000); // 100.00 points
        match self.method {
            EvaluationMethod::Comprehensive => {
                p.check(
                    !self.items.is_empty(),
                    format!("{prefix}.items"),
                    "the comprehensive method needs scoring items",
                );
                let total: i64 = self.items.iter().map(|i| i.max_points.units()).sum();
                p.check(
                    self.items.is_empty() || total == hundred.units(),
                    format!("{prefix}.items"),
                    format!(
                        "maximum points must add up to 100.00, they add up to {}",
                        Points::from_hundredths(total)
                    ),
                );
                let prices = self
                    .items
                    .iter()
                    .filter(|i| i.kind == ItemKind::Price)
                    .count();
                p.check(
                    prices == 1,
                    format!("{prefix}.items"),
                    format!("exactly one item must be of kind \"price\", found {prices}"),
                );
                p.check(
                    self.price.is_some(),
                    format!("{prefix}.price"),
                    "the comprehensive method needs a price formula",
                );
            }
            EvaluationMethod::LowestPrice => {
                p.check(
                    self.items.is_empty(),
                    format!("{prefix}.items"),
                    "the lowest-price method ranks by price and takes no scoring items",
                );
                p.check(
                    self.price.is_none(),
                    format!("{prefix}.price"),
                    "the lowest-price method takes no price formula",
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            let f = format!("{prefix}.items[{i}]");
            let id_ok = !item.id.is_empty()
                && item.id.len() <= 40
                && item
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            p.check(
                id_ok,
                format!("{f}.id"),
                "1-40 characters of a-z, 0-9, '_' or '-'",
            );
            p.check(
                seen.insert(item.id.as_str()),
                format!("{f}.id"),
                "duplicate item id",
            );
            p.check(
                !item.name.trim().is_empty() && item.name.chars().count() <= 200,
                format!("{f}.name"),
                "1-200 characters",
            );
            p.check(
                item.max_points > Points::ZERO && item.max_points <= hundred,
                format!("{f}.max_points"),
                "must be more than 0 and at most 100",
            );
        }
        if let Some(f) = &self.price {
            let fp = format!("{prefix}.price");
            p.check(
                f.benchmark == Benchmark::TrimmedMean || f.trim == 0,
                format!("{fp}.trim"),
                "trimming applies only to the trimmed-mean benchmark",
            );
            p.check(f.trim <= 5, format!("{fp}.trim"), "at most 5 from each end");
            p.check(
                f.k_coefficients.len() <= 20,
                format!("{fp}.k_coefficients"),
                "at most 20 candidates",
            );
            for (i, k) in f.k_coefficients.iter().enumerate() {
                p.check(
                    k.units() >= 8000 && k.units() <= 1_2000,
                    format!("{fp}.k_coefficients[{i}]"),
                    "must lie between 0.8 and 1.2",
                );
            }
            for (name, v) in [
                ("deduct_above_per_pct", f.deduct_above_per_pct),
                ("deduct_below_per_pct", f.deduct_below_per_pct),
            ] {
                p.check(
                    v >= Points::ZERO && v <= Points::from_hundredths(1_000),
                    format!("{fp}.{name}"),
                    "must lie between 0 and 10 points",
                );
            }
        }
        p.check(
            self.aggregation.trim_when_at_least >= 3,
            format!("{prefix}.aggregation.trim_when_at_least"),
            "must be at least 3",
        );
        p.check(
            self.aggregation.outlier_points > Points::ZERO,
            format!("{prefix}.aggregation.outlier_points"),
            "must be more than 0",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EvaluationSpec {
        serde_json::from_value(serde_json::json!({
            "method": "comprehensive",
            "items": [
                {"id": "price", "name": "投标报价", "kind": "price", "max_points": "40"},
                {"id": "tech", "name": "技术方案", "kind": "technical", "max_points": "45"},
                {"id": "biz", "name": "商务", "kind": "business", "max_points": "15"}
            ],
            "price": {"benchmark": "trimmed_mean", "trim": 1, "k_coefficients": ["0.95", "0.97"],
                      "deduct_above_per_pct": "1", "deduct_below_per_pct": "0.5"}
        }))
        .unwrap()
    }

    #[test]
    fn a_sound_spec_passes() {
        let mut p = Problems::new();
        spec().validate("evaluation", &mut p);
        assert!(p.is_empty(), "{:?}", p.list());
    }

    #[test]
    fn every_problem_is_listed() {
        let mut s = spec();
        s.items[1].max_points = Points::from_hundredths(5_000);
        s.items[2].id = "price".into();
        s.price
            .as_mut()
            .unwrap()
            .k_coefficients
            .push(Ratio::from_ten_thousandths(5000));
        let mut p = Problems::new();
        s.validate("evaluation", &mut p);
        let fields: Vec<_> = p.list().iter().map(|x| x.field.as_str()).collect();
        assert!(fields.contains(&"evaluation.items"), "{fields:?}");
        assert!(fields.contains(&"evaluation.items[2].id"), "{fields:?}");
        assert!(
            fields.contains(&"evaluation.price.k_coefficients[2]"),
            "{fields:?}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<EvaluationSpec, _> =
            serde_json::from_value(serde_json::json!({"method": "lowest_price", "colour": "red"}));
        assert!(r.is_err());
    }
}
