//! Clarifications (澄清): a member asks a bidder a signed question with a
//! time limit; only that bidder answers, signed with its own key, once,
//! before the limit — late by one millisecond is late.

use kaibiao::service::evaluation::{
    sign_statement, ClarificationAnswerStatement, ClarificationStatement,
    CLARIFICATION_ANSWER_LABEL, CLARIFICATION_LABEL,
};
use serde_json::{json, Value};

use super::{signed, Panel, Stage};

impl Panel {
    pub(super) fn ask(&self, m: &str, minutes: u32) -> Value {
        let st = ClarificationStatement {
            section_id: self.fx.section.clone(),
            expert_id: m.into(),
            bid: self.bids[0].clone(),
            question: "请说明投标报价中安全文明施工费的计取依据。".into(),
            minutes,
        };
        signed(&self.keys[m], CLARIFICATION_LABEL, &st)
    }

    /// Bidder 0's answer to `id`, signed with bidder `signer`'s key.
    pub(super) fn clarify(&self, signer: usize, id: &str, text: &str) -> Value {
        let st = ClarificationAnswerStatement {
            section_id: self.fx.section.clone(),
            clarification_id: id.into(),
            bid: self.bids[0].clone(),
            answer: text.into(),
        };
        let sig = sign_statement(
            &self.fx.keys[signer].signing,
            CLARIFICATION_ANSWER_LABEL,
            &st,
        );
        json!({"answer": text, "signature": sig})
    }

    pub(super) async fn send_answer(
        &self,
        bidder: usize,
        id: &str,
        body: Value,
    ) -> crate::helpers::Resp {
        self.app()
            .post(
                &format!(
                    "/api/sections/{}/clarifications/{id}/answer",
                    self.fx.section
                ),
                Some(&self.fx.w.bidders[bidder].token),
                body,
            )
            .await
    }
}

#[actix_web::test]
async fn a_clarification_is_answered_by_its_bidder_signed_once_and_in_time() {
    let p = Panel::at(Stage::Reviewing).await;
    let (m0, m1) = (&p.members[0], &p.members[1]);
    p.post("clarifications", p.ask(m0, 0))
        .await
        .expect_error(422, "validation_failed");
    let mut altered = p.ask(m0, 10);
    altered["statement"]["minutes"] = json!(11);
    p.post("clarifications", altered)
        .await
        .expect_error(422, "proof_invalid");
    let first = p.post("clarifications", p.ask(m0, 10)).await.expect(200);
    let first_id = first["id"].as_str().unwrap();
    let mail = p
        .app()
        .wait_for_mail(&p.fx.w.bidders[0].email, first_id)
        .await;
    assert!(mail.contains("安全文明施工费"), "{mail}");
    // Another bidder cannot answer; nor with another bidder's key.
    p.send_answer(1, first_id, p.clarify(1, first_id, "x"))
        .await
        .expect_error(403, "forbidden");
    p.send_answer(0, first_id, p.clarify(1, first_id, "按省定额计取。"))
        .await
        .expect_error(422, "proof_invalid");
    // At the limit it is late…
    p.app().advance(chrono::Duration::minutes(10));
    p.send_answer(0, first_id, p.clarify(0, first_id, "按省定额计取。"))
        .await
        .expect_error(409, "deadline_passed");
    // …a millisecond before it, in time; and only once.
    let second = p.post("clarifications", p.ask(m1, 10)).await.expect(200);
    let second_id = second["id"].as_str().unwrap();
    p.app()
        .advance(chrono::Duration::minutes(10) - chrono::Duration::milliseconds(1));
    p.send_answer(0, second_id, p.clarify(0, second_id, "按省定额计取。"))
        .await
        .expect(200);
    p.send_answer(0, second_id, p.clarify(0, second_id, "再答"))
        .await
        .expect_error(409, "conflict");
    p.stop().await;
}
