//! Fixtures as code: the organisations and people of a small trading world,
//! and sections in each state, made through the real services and API.

use ed25519_dalek::SigningKey;
use kaibiao::crypto::keyproof::{SectionKeyStatement, Statement};
use kaibiao::crypto::{sign, x25519};
use kaibiao::domain::identity::{OrgKind, Role};
use kaibiao::service::auth;
use serde_json::{json, Value};

use crate::helpers::{credit_code, evaluation, unique, TestApp, PASSWORD};

#[derive(Clone)]
pub struct Person {
    pub id: String,
    pub token: String,
    pub username: String,
    pub email: String,
    pub org_id: Option<String>,
}

pub struct Custodian {
    pub person: Person,
    pub identity: SigningKey,
}

pub struct World {
    pub admin: Person,
    pub centre: String,
    pub agent: String,
    pub tenderer_org: String,
    pub regulator: String,
    pub host: Person,
    pub host_b: Person,
    pub agent_host: Person,
    pub tenderer: Person,
    pub supervisor: Person,
    pub supervisor_b: Person,
    pub custodians: Vec<Custodian>,
    pub expert: Person,
    pub bidders: Vec<Person>,
}

pub async fn org(app: &TestApp, kind: OrgKind, name: &str) -> String {
    let db = app.db.clone();
    let now = app.now();
    let name = name.to_string();
    let centre_code = (kind == OrgKind::TradingCentre).then(|| format!("C{}", unique() % 100_000));
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        auth::bootstrap_org(
            &mut c,
            now,
            auth::NewOrg {
                kind,
                name,
                credit_code: credit_code(unique()),
                centre_code,
            },
        )
        .unwrap()
        .id
        .into_string()
    })
    .await
    .unwrap()
}

/// A verified user, signed in.
pub async fn person(app: &TestApp, org: Option<&str>, role: Role, name: &str) -> Person {
    let db = app.db.clone();
    let now = app.now();
    let username = format!("{name}-{}", unique());
    let email = format!("{username}@example.cn");
    let (u, e, o) = (username.clone(), email.clone(), org.map(str::to_string));
    let id = tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        let user = auth::BootstrapUser {
            org_id: o.map(kaibiao::domain::ids::OrgId::from_db),
            role,
            username: &u,
            email: &e,
            display_name: "测试用户",
            password: PASSWORD,
        };
        auth::bootstrap_user(&mut c, now, user)
            .unwrap()
            .id
            .into_string()
    })
    .await
    .unwrap();
    let token = login(app, &username).await;
    Person {
        id,
        token,
        username,
        email,
        org_id: org.map(str::to_string),
    }
}

pub async fn login(app: &TestApp, username: &str) -> String {
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": username, "password": PASSWORD}),
        )
        .await
        .expect(200);
    r["token"].as_str().unwrap().to_string()
}

/// Registers an Ed25519 key of `purpose` for `who`, with a real proof.
pub async fn register_ed25519(
    app: &TestApp,
    who: &Person,
    purpose: &str,
    key: &SigningKey,
) -> Value {
    let ch = app
        .post(
            "/api/keys/challenges",
            Some(&who.token),
            json!({"purpose": purpose}),
        )
        .await
        .expect(201);
    let pk = hex::encode(key.verifying_key().to_bytes());
    let st = Statement {
        challenge: ch["nonce"].as_str().unwrap(),
        challenge_id: ch["id"].as_str().unwrap(),
        owner: ch["owner"].as_str().unwrap(),
        public_key: &pk,
        purpose,
    };
    let proof = st.sign_ed25519(key);
    app.post(
        "/api/keys",
        Some(&who.token),
        json!({"challenge_id": ch["id"], "public_key": pk, "proof": proof}),
    )
    .await
    .expect(201)
}

pub async fn register_x25519(app: &TestApp, who: &Person, key: &x25519::SecretKey) -> Value {
    let ch = app
        .post(
            "/api/keys/challenges",
            Some(&who.token),
            json!({"purpose": "bidder_encryption"}),
        )
        .await
        .expect(201);
    let server: [u8; 32] =
        kaibiao::crypto::hex_array(ch["server_public_key"].as_str().unwrap()).unwrap();
    let pk = hex::encode(key.public_key());
    let st = Statement {
        challenge: ch["nonce"].as_str().unwrap(),
        challenge_id: ch["id"].as_str().unwrap(),
        owner: ch["owner"].as_str().unwrap(),
        public_key: &pk,
        purpose: "bidder_encryption",
    };
    let proof = st.mac_x25519(key, &server).unwrap();
    app.post(
        "/api/keys",
        Some(&who.token),
        json!({"challenge_id": ch["id"], "public_key": pk, "proof": proof}),
    )
    .await
    .expect(201)
}

impl World {
    pub async fn build(app: &TestApp) -> World {
        let centre = org(app, OrgKind::TradingCentre, "测试市公共资源交易中心").await;
        let centre_b = org(app, OrgKind::TradingCentre, "邻市公共资源交易中心").await;
        let agent = org(app, OrgKind::Agent, "测试招标代理有限公司").await;
        let tenderer_org = org(app, OrgKind::Tenderer, "测试市城市建设投资集团").await;
        let regulator = org(app, OrgKind::Regulator, "测试市住房和城乡建设局").await;
        let regulator_b = org(app, OrgKind::Regulator, "邻市住房和城乡建设局").await;
        let notary = org(app, OrgKind::Notary, "测试市公证处").await;
        let admin = person(app, None, Role::Admin, "admin").await;
        let host = person(app, Some(&centre), Role::Host, "host").await;
        let host_b = person(app, Some(&centre_b), Role::Host, "host-b").await;
        let agent_host = person(app, Some(&agent), Role::Host, "agent").await;
        let tenderer = person(app, Some(&tenderer_org), Role::Tenderer, "tenderer").await;
        let supervisor = person(app, Some(&regulator), Role::Supervisor, "supervisor").await;
        let supervisor_b = person(app, Some(&regulator_b), Role::Supervisor, "supervisor-b").await;
        let expert = person(app, Some(&centre_b), Role::Expert, "expert").await;
        let custodian_orgs = [&centre, &tenderer_org, &regulator, &notary, &centre_b];
        let mut custodians = Vec::new();
        for (i, o) in custodian_orgs.iter().enumerate() {
            let p = person(app, Some(o), Role::Custodian, &format!("custodian{i}")).await;
            let identity = sign::generate();
            register_ed25519(app, &p, "custodian_identity", &identity).await;
            custodians.push(Custodian {
                person: p,
                identity,
            });
        }
        let mut bidders = Vec::new();
        for i in 0..3 {
            let o = org(app, OrgKind::Bidder, &format!("投标企业{i}有限公司")).await;
            bidders.push(person(app, Some(&o), Role::Bidder, &format!("bidder{i}")).await);
        }
        World {
            admin,
            centre,
            agent,
            tenderer_org,
            regulator,
            host,
            host_b,
            agent_host,
            tenderer,
            supervisor,
            supervisor_b,
            custodians,
            expert,
            bidders,
        }
    }

    pub async fn project(&self, app: &TestApp, category: &str, by_law: bool) -> String {
        let r = app
            .post(
                "/api/projects",
                Some(&self.host.token),
                json!({
                    "code": format!("P-{}", unique()),
                    "name": "城南污水处理厂扩建工程",
                    "category": category,
                    "must_tender_by_law": by_law,
                    "tenderer_org_id": self.tenderer_org,
                    "regulator_org_id": self.regulator,
                }),
            )
            .await
            .expect(201);
        r["id"].as_str().unwrap().to_string()
    }

    pub fn custodian_ids(&self) -> Vec<String> {
        self.custodians
            .iter()
            .map(|c| c.person.id.clone())
            .collect()
    }

    /// A complete draft: deadline `days` ahead, five custodians, 3 of 5.
    pub fn draft_body(&self, app: &TestApp, days: i64) -> Value {
        json!({
            "code": format!("S-{}", unique()),
            "name": "第一标段 土建施工",
            "description": "土建、安装及配套工程。",
            "deadline": app.now().plus(chrono::Duration::days(days)).rfc3339(),
            "window_minutes": 30,
            "decryption_mode": "custodians",
            "custodians": self.custodian_ids(),
            "threshold": 3,
            "min_bidders": 3,
            "ceiling_price": "12000000.00",
            "evaluation": evaluation(),
        })
    }

    pub async fn draft(&self, app: &TestApp, days: i64) -> String {
        let p = self.project(app, "construction", true).await;
        let r = app
            .post(
                &format!("/api/projects/{p}/sections"),
                Some(&self.host.token),
                self.draft_body(app, days),
            )
            .await
            .expect(201);
        r["id"].as_str().unwrap().to_string()
    }

    /// Every custodian registers a fresh X25519 key for the section.
    pub async fn register_section_keys(
        &self,
        app: &TestApp,
        section: &str,
    ) -> Vec<x25519::SecretKey> {
        let mut keys = Vec::new();
        for c in &self.custodians {
            let sk = x25519::SecretKey::generate();
            let pk = hex::encode(sk.public_key());
            let identity = hex::encode(c.identity.verifying_key().to_bytes());
            let st = SectionKeyStatement {
                custodian: &c.person.id,
                identity_key: &identity,
                public_key: &pk,
                section_id: section,
            };
            app.post(
                &format!("/api/sections/{section}/custodian-key"),
                Some(&c.person.token),
                json!({"public_key": pk, "signature": st.sign(&c.identity)}),
            )
            .await
            .expect(201);
            keys.push(sk);
        }
        keys
    }

    pub async fn upload(&self, app: &TestApp, section: &str, name: &str, bytes: &[u8]) -> Value {
        let path = format!(
            "/api/sections/{section}/documents?name={}",
            url_escape(name)
        );
        app.raw(
            "POST",
            &path,
            Some(&self.host.token),
            "application/pdf",
            bytes.to_vec(),
        )
        .await
        .expect(201)
    }

    /// A draft with keys and a document, ready to publish.
    pub async fn ready(&self, app: &TestApp, days: i64) -> String {
        let s = self.draft(app, days).await;
        self.register_section_keys(app, &s).await;
        self.upload(app, &s, "招标文件.pdf", b"%PDF-1.7 tender documents")
            .await;
        s
    }

    /// Creates a section from `body` in `project`, with keys and a document,
    /// and publishes it.
    pub async fn publish_body(&self, app: &TestApp, project: &str, body: Value) -> String {
        self.publish_keyed(app, project, body).await.0
    }

    /// [`World::publish_body`], and the custodians' section keys.
    pub async fn publish_keyed(
        &self,
        app: &TestApp,
        project: &str,
        body: Value,
    ) -> (String, Vec<x25519::SecretKey>) {
        let s = app
            .post(
                &format!("/api/projects/{project}/sections"),
                Some(&self.host.token),
                body,
            )
            .await
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        let keys = self.register_section_keys(app, &s).await;
        self.upload(app, &s, "招标文件.pdf", b"%PDF tender").await;
        app.post(
            &format!("/api/sections/{s}/publish"),
            Some(&self.host.token),
            json!({}),
        )
        .await
        .expect(200);
        (s, keys)
    }

    pub async fn published(&self, app: &TestApp, days: i64) -> String {
        let s = self.ready(app, days).await;
        app.post(
            &format!("/api/sections/{s}/publish"),
            Some(&self.host.token),
            json!({}),
        )
        .await
        .expect(200);
        s
    }
}

pub fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A bidder's keys, registered with the platform.
pub struct BidderKeys {
    pub signing: SigningKey,
    pub encryption: x25519::SecretKey,
}

impl World {
    pub async fn bidder_keys(&self, app: &TestApp, i: usize) -> BidderKeys {
        let keys = BidderKeys {
            signing: sign::generate(),
            encryption: x25519::SecretKey::generate(),
        };
        register_ed25519(app, &self.bidders[i], "bidder_signing", &keys.signing).await;
        register_x25519(app, &self.bidders[i], &keys.encryption).await;
        keys
    }

    pub fn client(&self, app: &TestApp, who: &Person) -> kaibiao::client::Client {
        kaibiao::client::Client::new(&app.base).with_token(&who.token)
    }
}

/// Seals a bid for `section` into a fresh directory under `root`.
#[allow(clippy::too_many_arguments)]
pub async fn seal(
    app: &TestApp,
    root: &std::path::Path,
    bidder: &Person,
    keys: &BidderKeys,
    section: &str,
    price: &str,
    documents: &[u8],
    supersedes: Option<&std::path::Path>,
) -> (std::path::PathBuf, String) {
    let client = kaibiao::client::Client::new(&app.base);
    let (_, hash, json) = client.params(section).await.unwrap();
    let dir = root.join(format!("bid-{}", crate::helpers::unique()));
    let docs = root.join(format!("docs-{}", crate::helpers::unique()));
    std::fs::write(&docs, documents).unwrap();
    let fields = [
        ("price".to_string(), price.to_string()),
        ("duration_days".to_string(), "365".to_string()),
    ]
    .into();
    let req = kaibiao::client::SealRequest {
        params_json: &json,
        params_hash: &hash,
        bidder: bidder.org_id.as_deref().unwrap(),
        signing: &keys.signing,
        encryption_public: keys.encryption.public_key(),
        fields,
        documents: &docs,
        supersedes,
        now_ms: app.now().millis(),
    };
    let (h, _) = kaibiao::client::seal_to_dir(req, &dir, &mut |_| {}).unwrap();
    (dir, h)
}
