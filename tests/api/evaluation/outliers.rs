//! Outliers (异常评分): a member's total far from the panel's median is
//! flagged when the host asks for the result; the supervisor sees the flag
//! in the room, the member is told, and the result waits until the member
//! confirms the score with a reason.

use kaibiao::service::evaluation::{OutlierStatement, OUTLIER_LABEL};
use serde_json::Value;

use super::{signed, Panel, Stage};
use crate::fixture::events_until;

impl Panel {
    pub(super) fn confirm_outlier(&self, m: &str, reason: &str) -> Value {
        let st = OutlierStatement {
            section_id: self.fx.section.clone(),
            expert_id: m.into(),
            bid: self.bids[0].clone(),
            reason: reason.into(),
        };
        signed(&self.keys[m], OUTLIER_LABEL, &st)
    }
}

#[actix_web::test]
async fn an_outlying_total_is_flagged_until_its_member_confirms_it_with_a_reason() {
    let p = Panel::at(Stage::Reviewing).await;
    p.qualify_all().await;
    // One member's total for bid 0 is 30 points under the median.
    let outlier = p.members[0].clone();
    for m in &p.members {
        for (i, b) in p.bids.iter().enumerate() {
            let tech = if *m == outlier && i == 0 { "10" } else { "40" };
            p.post("scores", p.sheet(m, b, tech)).await.expect(200);
        }
    }
    let mut supervisor = p.fx.watch(Some(&p.fx.w.supervisor.token), 0).await;
    let flagged = p.host_post("finish").await.expect(200);
    assert_eq!(flagged["phase"], "scoring", "{flagged}");
    let flags = flagged["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{flagged}");
    assert_eq!(flags[0]["expert_id"], outlier.as_str());
    assert_eq!(
        (flags[0]["total"].as_str(), flags[0]["median"].as_str()),
        (Some("18.00"), Some("48.00"))
    );
    // The supervisor sees the flag in the room's staff view; the member is told.
    let frames = events_until(&mut supervisor, "evaluation.outlier_flagged").await;
    assert_eq!(
        frames.last().unwrap()["data"]["expert_id"],
        outlier.as_str()
    );
    p.app()
        .wait_for_mail(
            &format!("{}@experts.example.cn", outlier.to_lowercase()),
            "18.00",
        )
        .await;
    // A blank reason, another member's confirmation: refused.
    p.post("outliers", p.confirm_outlier(&outlier, "  "))
        .await
        .expect_error(422, "validation_failed");
    p.post("outliers", p.confirm_outlier(&p.members[1], "x"))
        .await
        .expect_error(422, "validation_failed");
    p.post(
        "outliers",
        p.confirm_outlier(&outlier, "该投标技术方案未响应主要技术参数，故评分较低。"),
    )
    .await
    .expect(200);
    p.post("outliers", p.confirm_outlier(&outlier, "again"))
        .await
        .expect_error(409, "conflict");
    let done = p.host_post("finish").await.expect(200);
    assert_eq!(done["phase"], "signing");
    let outliers = done["report"]["outcome"]["outliers"].as_array().unwrap();
    assert_eq!(outliers.len(), 1);
    p.stop().await;
}
