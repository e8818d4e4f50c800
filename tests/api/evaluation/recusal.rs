//! Recusal (回避) mid-session: the member who recuses can act no more and
//! the next reserve takes the seat — before the scores, or after them, when
//! the reserve reviews and scores everything and the recused member's
//! signed work is kept on the record but no longer counts.

use kaibiao::service::evaluation::{RecusalStatement, RECUSAL_LABEL};
use serde_json::{json, Value};

use super::{signed, Panel, Stage};

impl Panel {
    pub(super) fn recusal(&self, m: &str, reason: &str) -> Value {
        let st = RecusalStatement {
            section_id: self.fx.section.clone(),
            expert_id: m.into(),
            reason: reason.into(),
        };
        signed(&self.keys[m], RECUSAL_LABEL, &st)
    }

    /// Member `m` recuses; the reserve it calls is admitted in its place.
    /// Returns the reserve.
    pub(super) async fn recuse(&mut self, m: &str, reason: &str) -> String {
        let r = self
            .post("recusals", self.recusal(m, reason))
            .await
            .expect(200);
        assert_eq!(r["reserve_called"], true);
        let n = self.members.len() + 1;
        let calls = self.calls(n).await;
        let (reserve, mail) = calls
            .iter()
            .find(|(id, _)| !self.members.contains(id))
            .unwrap()
            .clone();
        let k = self.admit(&reserve, &mail).await;
        self.members.push(reserve.clone());
        self.keys.insert(reserve.clone(), k);
        reserve
    }
}

#[actix_web::test]
async fn a_member_who_recuses_is_replaced_by_a_reserve_and_can_act_no_more() {
    let mut p = Panel::at(Stage::Reviewing).await;
    let recused = p.members[2].clone();
    p.recuse(&recused, "发现与投标人项目经理曾为同事").await;
    p.post("votes", p.vote(&recused, &p.bids[0], true))
        .await
        .expect_error(422, "pass_rejected");
    p.keys.remove(&recused);
    p.qualify_all().await;
    assert_eq!(p.status().await["phase"], "scoring");
    p.stop().await;
}

#[actix_web::test]
async fn a_member_who_recuses_after_scoring_is_replaced_and_its_work_no_longer_counts() {
    let mut p = Panel::at(Stage::Reviewing).await;
    p.qualify_all().await;
    for m in p.members.clone() {
        for b in p.bids.clone() {
            p.post("scores", p.sheet(&m, &b, "40")).await.expect(200);
        }
    }
    let second = p.members[1].clone();
    let reserve = p
        .recuse(&second, "评分中发现曾参与该投标人的项目咨询")
        .await;
    p.post("scores", p.sheet(&second, &p.bids[0], "40"))
        .await
        .expect_error(422, "pass_rejected");
    // The reserve reviews and scores everything.
    for b in p.bids.clone() {
        p.post("votes", p.vote(&reserve, &b, true))
            .await
            .expect(200);
        p.post("scores", p.sheet(&reserve, &b, "40"))
            .await
            .expect(200);
    }
    let done = p.host_post("finish").await.expect(200);
    assert_eq!(done["phase"], "signing", "{done}");
    let panel: Vec<String> = serde_json::from_value(done["report"]["panel"].clone()).unwrap();
    assert!(
        panel.contains(&reserve) && !panel.contains(&second),
        "{panel:?}"
    );
    // Everyone sitting signs; the recused member cannot.
    let hash = done["report_hash"].as_str().unwrap();
    for m in p.members.iter().filter(|m| **m != second) {
        p.post("report/signatures", p.report(m, hash, true, None))
            .await
            .expect(200);
    }
    p.post("report/signatures", p.report(&second, hash, true, None))
        .await
        .expect_error(422, "pass_rejected");
    p.host_post("publish").await.expect(200);
    // The recused member's work is kept; the transcript verifies with it.
    let tr = p.transcript().await;
    let x = tr.evaluation.as_ref().unwrap();
    assert!(
        x.scores.iter().any(|v| v.statement.contains(&second)),
        "the recused member's work is kept"
    );
    let e = kaibiao::transcript::verify(&tr)
        .unwrap()
        .evaluation
        .unwrap();
    assert_eq!(e.committee, 5);
    let _ = json!(null);
    p.stop().await;
}
