//! Remote expert evaluation (远程异地评标) over real HTTP, one file per
//! concern: the pool, the draw, seating (declines, no-shows), passes from
//! trusted centres, the seed's contributions, the qualification review, signed scores, the report,
//! the publicity and the award, clarifications, recusal, outliers, and the
//! transcript that recomputes it all. A [`Panel`] starts each test at its
//! [`Stage`], reached the way the parties reach it.

mod centres;
mod clarifications;
mod contributions;
mod draw;
mod outliers;
mod passes;
mod pool;
mod publicity;
mod recusal;
mod report;
mod review;
mod scores;
mod seating;
mod transcript;

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use kaibiao::crypto::sign;
use kaibiao::evaluation::pass::{self, Centre, Pass, PassBody};
use kaibiao::evaluation::seed;
use kaibiao::service::evaluation::{
    sign_statement, ReportStatement, ScoreStatement, VoteStatement, REPORT_LABEL, SCORE_LABEL,
    VOTE_LABEL,
};
use serde_json::{json, Value};

use crate::fixture::{Fixture, Fx, Phase};
use crate::helpers::{credit_code, decode_mail, Resp, TestApp};
use crate::smtp::SmtpServer;
use crate::world::World;

/// The partner centres this platform trusts.
pub const CENTRES: [&str; 3] = ["GZ-GGZY", "SZ-GGZY", "ZH-GGZY"];
/// The three bids, in bidder order; the last fails the qualification at
/// [`Stage::Scoring`].
pub const PRICES: [&str; 3] = ["1000000.00", "980000.00", "1050000.00"];
/// The technical points each member gives the top bid at [`Stage::Signing`]
/// (the other qualified bid gets 30 from everyone, and credit 8).
pub const TECH: [&str; 5] = ["40", "42", "44", "41", "43"];

/// Where the evaluation of a section stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The opening closed with three bids announced; no pool yet.
    Evaluating,
    /// The pool ([`pool_csv`]) imported and five members and two reserves
    /// of "civil" drawn; the five call mails sent.
    Drawn,
    /// The five called members accepted and were admitted with passes from
    /// their home centres: the qualification review is open.
    Reviewing,
    /// Every member reviewed every bid; the bid at 1050000.00 failed by
    /// three of five, the others qualified.
    Scoring,
    /// Every member scored both qualified bids ([`TECH`]); the result is
    /// computed and the report awaits the members' signatures.
    Signing,
    /// Four members signed (member 1 dissenting), the fifth stayed silent
    /// past the signing time, and the result is publicised (公示).
    Publicity,
    /// The publicity ran out without an objection: awarded (中标).
    Awarded,
}

/// A section under evaluation, its committee and their keys.
pub struct Panel {
    pub fx: Fx,
    pub centre_keys: BTreeMap<&'static str, SigningKey>,
    _trust: tempfile::TempDir,
    smtp: Option<SmtpServer>,
    /// The members called (expert ids), in the order of their calls.
    pub members: Vec<String>,
    /// The admitted members' signing keys.
    pub keys: BTreeMap<String, SigningKey>,
    /// The announced bids' envelope hashes, by bidder.
    pub bids: Vec<String>,
    /// At [`Stage::Signing`] and after: the finished result.
    pub finished: Value,
}

impl Panel {
    pub async fn at(stage: Stage) -> Panel {
        Panel::build(None, stage).await
    }

    /// [`Panel::at`] on a platform that sends its mail to `smtp`.
    pub async fn over_smtp(smtp: SmtpServer, stage: Stage) -> Panel {
        Panel::build(Some(smtp), stage).await
    }

    async fn build(smtp: Option<SmtpServer>, stage: Stage) -> Panel {
        let trust = tempfile::tempdir().unwrap();
        let mut centre_keys = BTreeMap::new();
        for code in CENTRES {
            let k = sign::generate();
            let c = Centre::signed(code, &format!("{code} 交易中心"), &k);
            std::fs::write(
                trust.path().join(format!("{code}.json")),
                serde_json::to_string(&c).unwrap(),
            )
            .unwrap();
            centre_keys.insert(code, k);
        }
        let dir = trust.path().to_path_buf();
        let port = smtp.as_ref().map(|s| s.port);
        let fx = Fixture::new()
            .prices(&PRICES.map(Some))
            .config(move |c| {
                c.evaluation.trust_dir = dir;
                if let Some(port) = port {
                    c.mail.transport = kaibiao::config::MailTransport::Smtp;
                    c.mail.smtp.host = "127.0.0.1".into();
                    c.mail.smtp.port = port;
                    c.mail.smtp.tls = kaibiao::config::SmtpTls::None;
                }
            })
            .at(Phase::Evaluating)
            .await;
        let record = fx
            .app
            .get(
                &format!("/api/public/sections/{}/opening-record", fx.section),
                None,
            )
            .await
            .expect(200);
        let bids = (0..3)
            .map(|i| {
                record["record"]["bids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|b| b["bidder"] == fx.org(i).as_str())
                    .unwrap()["envelope_hash"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let mut p = Panel {
            fx,
            centre_keys,
            _trust: trust,
            smtp,
            members: Vec::new(),
            keys: BTreeMap::new(),
            bids,
            finished: Value::Null,
        };
        if stage >= Stage::Drawn {
            p.import(pool_csv(&p.fx.app, &p.fx.w).await).await;
            p.draw(draw_body(5, 2)).await.expect(200);
            p.members = p.calls(5).await.into_iter().map(|(id, _)| id).collect();
        }
        p.reach(Stage::Drawn, stage).await;
        p
    }

    /// Takes a panel drawn by hand (its five call mails sent) on from
    /// [`Stage::Drawn`] to `stage`, the way [`Panel::at`] does.
    pub async fn drawn_by_hand(mut self, stage: Stage) -> Panel {
        self.members = self.calls(5).await.into_iter().map(|(id, _)| id).collect();
        self.reach(Stage::Drawn, stage).await;
        self
    }

    /// The steps after `from` up to `stage`.
    async fn reach(&mut self, from: Stage, stage: Stage) {
        let p = self;
        let stage = if stage > from { stage } else { return };
        if stage >= Stage::Reviewing {
            for (id, mail) in p.calls(5).await {
                let k = p.admit(&id, &mail).await;
                p.keys.insert(id, k);
            }
        }
        if stage >= Stage::Scoring {
            for (i, m) in p.members.clone().iter().enumerate() {
                for (j, b) in p.bids.clone().iter().enumerate() {
                    let pass = j != REJECTED || i < 2;
                    p.post("votes", p.vote(m, b, pass)).await.expect(200);
                }
            }
        }
        if stage >= Stage::Signing {
            for (i, m) in p.members.clone().iter().enumerate() {
                for (j, b) in p.bids.clone().iter().enumerate() {
                    if j == REJECTED {
                        continue;
                    }
                    let t = if j == TOP { TECH[i] } else { "30" };
                    let sheet =
                        json!({"scores": [p.score(m, b, "tech", t), p.score(m, b, "credit", "8")]});
                    p.post("scores", sheet).await.expect(200);
                }
            }
            p.finished = p.host_post("finish").await.expect(200);
        }
        if stage >= Stage::Publicity {
            p.sign_report(4).await;
            p.fx.app.advance(chrono::Duration::minutes(61));
            p.host_post("publish").await.expect(200);
        }
        if stage >= Stage::Awarded {
            p.fx.app.advance(chrono::Duration::days(3));
            p.eventually_awarded().await;
        }
    }

    pub fn app(&self) -> &TestApp {
        &self.fx.app
    }

    pub async fn stop(self) {
        self.fx.app.stop().await;
    }

    pub fn host(&self) -> &str {
        &self.fx.w.host.token
    }

    /// The evaluation path `/api/sections/{s}/evaluation/{tail}`.
    pub fn path(&self, tail: &str) -> String {
        format!("/api/sections/{}/evaluation/{tail}", self.fx.section)
    }

    /// A signed statement posted to the evaluation (no session: the
    /// expert's signature and pass are what count).
    pub async fn post(&self, tail: &str, body: Value) -> Resp {
        self.app().post(&self.path(tail), None, body).await
    }

    /// The host's action `tail` (`draw`, `finish`, `publish`).
    pub async fn host_post(&self, tail: &str) -> Resp {
        self.app()
            .post(&self.path(tail), Some(self.host()), json!({}))
            .await
    }

    /// The whole draw, the way its parties take it: the supervisor and
    /// every partner centre named in `body` commit to a value (a repeat is
    /// recognised), the host asks for the draw, and each contributor
    /// reveals. A refused request is answered as it was; a taken one by the
    /// committee the last value drew.
    pub async fn draw(&self, body: Value) -> Resp {
        self.commit_all(&body).await;
        let r = self.request_draw(body).await;
        if r.status != 200 {
            return r;
        }
        let mut drawn = Value::Null;
        for party in r.json()["contributors"].as_array().unwrap() {
            drawn = self.reveal(party.as_str().unwrap()).await.expect(200)["drawn"].clone();
        }
        assert!(drawn.is_object(), "the last value drew the committee");
        Resp {
            status: r.status,
            headers: r.headers,
            body: serde_json::to_vec(&drawn).unwrap(),
        }
    }

    /// The host asks for the draw (nothing else).
    pub async fn request_draw(&self, body: Value) -> Resp {
        self.app()
            .post(&self.path("draw"), Some(self.host()), body)
            .await
    }

    /// The key a party signs its commitment with.
    pub fn party_key(&self, party: &str) -> &SigningKey {
        match seed::party_centre(party) {
            Some(code) => &self.centre_keys[code],
            None => &self.fx.supervisor_key,
        }
    }

    /// The value a party commits to (derived from its key, as the tools do).
    pub fn value_of(&self, party: &str) -> [u8; 32] {
        seed::derive_value(self.party_key(party), &self.fx.section)
    }

    /// A party's signed commitment to [`Panel::value_of`].
    pub fn commitment(&self, party: &str) -> Value {
        let st = seed::ContributionStatement {
            section_id: self.fx.section.clone(),
            party: party.into(),
            commitment: seed::value_commitment(&self.value_of(party)),
        };
        signed(self.party_key(party), seed::CONTRIBUTION_LABEL, &st)
    }

    pub async fn commit(&self, party: &str) -> Resp {
        self.post("draw/commitments", self.commitment(party)).await
    }

    /// The supervisor and every trusted partner centre of `body` commit.
    pub async fn commit_all(&self, body: &Value) {
        let centres = body["centres"].as_array().cloned().unwrap_or_default();
        let parties = std::iter::once(seed::SUPERVISOR.to_string()).chain(
            centres
                .iter()
                .filter_map(Value::as_str)
                .filter(|c| self.centre_keys.contains_key(c))
                .map(seed::centre_party),
        );
        for party in parties {
            self.commit(&party).await.expect(200);
        }
    }

    pub async fn reveal(&self, party: &str) -> Resp {
        let value = hex::encode(self.value_of(party));
        self.post("draw/reveals", json!({"party": party, "value": value}))
            .await
    }

    /// The evaluation as the host sees it.
    pub async fn status(&self) -> Value {
        self.app()
            .get(
                &format!("/api/sections/{}/evaluation", self.fx.section),
                Some(self.host()),
            )
            .await
            .expect(200)
    }

    /// The published result (404 before publication).
    pub async fn result(&self) -> Resp {
        self.app()
            .get(
                &format!("/api/public/sections/{}/result", self.fx.section),
                None,
            )
            .await
    }

    pub async fn eventually_awarded(&self) {
        self.app()
            .eventually("the section is awarded", || async {
                self.result().await.json()["phase"] == "awarded"
            })
            .await;
    }

    /// The administrator imports `csv` as the pool.
    pub async fn import(&self, csv: String) {
        self.app()
            .raw(
                "PUT",
                "/api/experts.csv",
                Some(self.fx.w.admin.token.as_str()),
                "text/csv",
                csv.into(),
            )
            .await
            .expect(200);
    }

    /// Every mail delivered so far (file outbox, or the SMTP server).
    pub fn mails(&self) -> Vec<String> {
        match &self.smtp {
            None => self.app().mails(),
            Some(smtp) => smtp
                .received()
                .iter()
                .map(|r| {
                    format!(
                        "To: {}\n{}",
                        r.to.join(", "),
                        decode_mail(r.data.as_bytes())
                    )
                })
                .collect(),
        }
    }

    /// (expert id, mail) of every call, once `n` have been delivered.
    pub async fn calls(&self, n: usize) -> Vec<(String, String)> {
        self.app()
            .eventually(&format!("{n} call mails"), || {
                let ok = calls(self.mails()).len() >= n;
                async move { ok }
            })
            .await;
        let v = calls(self.mails());
        assert_eq!(v.len(), n, "{v:?}");
        v
    }

    /// Answers a call.
    pub async fn answer(&self, token: &str, accept: bool) -> Resp {
        self.app()
            .post(
                "/api/evaluation/answer",
                None,
                json!({"token": token, "accept": accept}),
            )
            .await
    }

    /// A pass from `id`'s home centre for `key`, issued now.
    pub fn pass(&self, id: &str, key: &SigningKey) -> Pass {
        let c = centre_of(id);
        issue(
            &self.centre_keys[c],
            c,
            id,
            key,
            &self.fx.section,
            self.app().now().millis(),
        )
    }

    /// The expert accepts the call in `mail` and is admitted with a new key.
    pub async fn admit(&self, id: &str, mail: &str) -> SigningKey {
        self.answer(&token_in(mail), true).await.expect(200);
        let ek = sign::generate();
        self.post("admit", json!(self.pass(id, &ek)))
            .await
            .expect(200);
        ek
    }

    pub fn vote(&self, m: &str, bid: &str, pass: bool) -> Value {
        let st = VoteStatement {
            section_id: self.fx.section.clone(),
            expert_id: m.into(),
            bid: bid.into(),
            pass,
            reason: (!pass).then(|| "项目经理资格不符合招标文件要求".to_string()),
        };
        signed(&self.keys[m], VOTE_LABEL, &st)
    }

    /// Every member passes every bid.
    pub async fn qualify_all(&self) {
        for m in self.keys.keys() {
            for b in &self.bids {
                self.post("votes", self.vote(m, b, true)).await.expect(200);
            }
        }
    }

    pub fn score(&self, m: &str, bid: &str, item: &str, points: &str) -> Value {
        let st = ScoreStatement {
            section_id: self.fx.section.clone(),
            expert_id: m.into(),
            bid: bid.into(),
            item: item.into(),
            points: kaibiao::domain::decimal::Points::parse(points).unwrap(),
        };
        signed(&self.keys[m], SCORE_LABEL, &st)
    }

    /// Member `m`'s sheet for `bid`: `tech` points and credit 8.
    pub fn sheet(&self, m: &str, bid: &str, tech: &str) -> Value {
        json!({"scores": [self.score(m, bid, "tech", tech), self.score(m, bid, "credit", "8")]})
    }

    pub fn report_hash(&self) -> String {
        self.finished["report_hash"].as_str().unwrap().to_string()
    }

    pub fn report(&self, m: &str, hash: &str, agree: bool, dissent: Option<&str>) -> Value {
        let st = ReportStatement {
            section_id: self.fx.section.clone(),
            expert_id: m.into(),
            report_hash: hash.into(),
            agree,
            dissent: dissent.map(str::to_string),
        };
        signed(&self.keys[m], REPORT_LABEL, &st)
    }

    /// The first `n` members sign the report; member 1 dissents.
    pub async fn sign_report(&self, n: usize) {
        let hash = self.report_hash();
        for (i, m) in self.members.iter().enumerate().take(n) {
            let dissent = (i == 1).then_some("技术评分中施工组织设计一项评分偏高，本人保留意见。");
            self.post("report/signatures", self.report(m, &hash, i != 1, dissent))
                .await
                .expect(200);
        }
    }

    /// The section's transcript.
    pub async fn transcript(&self) -> kaibiao::transcript::Transcript {
        serde_json::from_value(
            self.app()
                .get(
                    &format!("/api/public/sections/{}/transcript", self.fx.section),
                    None,
                )
                .await
                .expect(200),
        )
        .unwrap()
    }
}

/// The bid that fails the qualification (its price is 1050000.00), the
/// top bid, and the other qualified one, by bidder.
pub const REJECTED: usize = 2;
pub const TOP: usize = 0;
pub const OTHER: usize = 1;

/// The credit code of organisation `org`.
pub async fn org_code(app: &TestApp, org: &str) -> String {
    let db = app.db.clone();
    let org = org.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        kaibiao::db::identity::find_org(&mut c, &kaibiao::domain::ids::OrgId::from_db(org))
            .unwrap()
            .unwrap()
            .credit_code
    })
    .await
    .unwrap()
}

/// Nine clean civil engineers over three centres, three in conflict (the
/// employer of bidder 0, the tenderer's, a relation of bidder 1's person),
/// and one unavailable.
pub async fn pool_csv(app: &TestApp, w: &World) -> String {
    let bidder0 = org_code(app, w.bidders[0].org_id.as_deref().unwrap()).await;
    let tenderer = org_code(app, &w.tenderer_org).await;
    let mut csv = String::from(
        "id,centre,name,email,specialties,employer,related_orgs,related_people,available\n",
    );
    for i in 0..9 {
        csv.push_str(&format!(
            "X{i},{},专家{i},x{i}@experts.example.cn,civil;cost,{},,,yes\n",
            CENTRES[i % 3],
            credit_code(900 + i as u32)
        ));
    }
    csv.push_str(&format!(
        "C-BIDDER,GZ-GGZY,冲突甲,cb@experts.example.cn,civil,{bidder0},,,yes\n"
    ));
    csv.push_str(&format!(
        "C-TENDERER,SZ-GGZY,冲突乙,ct@experts.example.cn,civil,{tenderer},,,yes\n"
    ));
    csv.push_str(&format!(
        "C-PERSON,ZH-GGZY,冲突丙,cp@experts.example.cn,civil,{},,{},yes\n",
        credit_code(999),
        w.bidders[1].email
    ));
    csv.push_str(&format!(
        "AWAY,ZH-GGZY,不可用,away@experts.example.cn,civil,{},,,no\n",
        credit_code(998)
    ));
    csv
}

pub fn draw_body(count: u32, reserves: u32) -> Value {
    json!({"requirements": [{"specialty": "civil", "count": count, "reserves": reserves}],
           "centres": CENTRES})
}

/// The answer token in a call mail.
pub fn token_in(mail: &str) -> String {
    let i = mail.find("kbx_").expect("a token in the mail");
    mail[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// (expert id, e-mail) of every call mail among `mails`.
pub fn calls(mails: Vec<String>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = mails
        .into_iter()
        .filter(|m| m.contains("@experts.example.cn") && m.contains("kbx_"))
        .map(|m| {
            let to = m
                .lines()
                .find_map(|l| l.strip_prefix("To: "))
                .unwrap()
                .trim()
                .to_string();
            let id = to.split('@').next().unwrap().to_uppercase();
            (id, m)
        })
        .collect();
    v.sort();
    v
}

pub fn issue(
    key: &SigningKey,
    centre: &str,
    expert: &str,
    ek: &SigningKey,
    section: &str,
    now: i64,
) -> Pass {
    let expert_key = hex::encode(ek.verifying_key().as_bytes());
    pass::issue(
        key,
        PassBody::new(centre, expert, &expert_key, section, now, 60),
    )
}

/// The home centre of pool expert `X{n}`.
pub fn centre_of(id: &str) -> &'static str {
    let n: usize = id[1..].parse().unwrap();
    CENTRES[n % 3]
}

pub fn signed<T: serde::Serialize>(k: &SigningKey, label: &str, st: &T) -> Value {
    json!({"statement": st, "signature": sign_statement(k, label, st)})
}
