//! The cast of the demo: two trading centres, a tenderer, a regulator and a
//! notary; a host, a supervisor, five custodians and five bidders, each
//! signed in with a client of their own; the custodians' and the
//! supervisor's identity keys, made on their devices and registered with a
//! proof of possession.

use ed25519_dalek::SigningKey;

use super::Demo;
use crate::client::Client;
use crate::crypto::sign;
use crate::domain::identity::{OrgKind, Role};

/// One person of the story, signed in.
pub struct Party {
    pub name: &'static str,
    pub user_id: String,
    pub org_id: String,
    pub client: Client,
}

pub struct Cast {
    pub tenderer_org: String,
    pub regulator: String,
    pub host: Party,
    pub supervisor: Party,
    pub supervisor_key: SigningKey,
    pub custodians: Vec<Party>,
    /// The custodians' identity keys, by custodian.
    pub identities: Vec<SigningKey>,
    pub bidders: Vec<Party>,
}

impl Cast {
    /// The bidder's name, for an organisation id in an answer.
    pub fn bidder_named(&self, org: &serde_json::Value) -> &'static str {
        self.bidders
            .iter()
            .find(|p| *org == p.org_id.as_str())
            .map_or("?", |p| p.name)
    }
}

pub async fn assemble(d: &mut Demo<'_>) -> anyhow::Result<Cast> {
    let sandbox = d.sandbox;
    d.step("organisations and people (bootstrap, e-mail counted as verified)");
    let centre = sandbox
        .org(OrgKind::TradingCentre, "示范市公共资源交易中心")
        .await?;
    let partner = sandbox
        .org(OrgKind::TradingCentre, "邻市公共资源交易中心")
        .await?;
    let tenderer_org = sandbox
        .org(OrgKind::Tenderer, "示范市水务集团有限公司")
        .await?;
    let regulator = sandbox
        .org(OrgKind::Regulator, "示范市住房和城乡建设局")
        .await?;
    let notary = sandbox.org(OrgKind::Notary, "示范市公证处").await?;
    let party = |org: String, role: Role, username: &'static str, name: &'static str| async move {
        let (user_id, username) = sandbox.user(Some(&org), role, username).await?;
        anyhow::Ok(Party {
            name,
            user_id,
            org_id: org,
            client: sandbox.signin(&username).await?,
        })
    };
    let host = party(centre.clone(), Role::Host, "demo-host", "主持人 host").await?;
    let supervisor = party(
        regulator.clone(),
        Role::Supervisor,
        "demo-supervisor",
        "监督人 supervisor",
    )
    .await?;
    let mut custodians = Vec::new();
    for (org, username) in [
        (&centre, "custodian-centre"),
        (&tenderer_org, "custodian-tenderer"),
        (&regulator, "custodian-regulator"),
        (&notary, "custodian-notary"),
        (&partner, "custodian-partner"),
    ] {
        custodians.push(party(org.clone(), Role::Custodian, username, username).await?);
    }
    let bidder_names = [
        ("华东建设集团", "bidder-a"),
        ("中原路桥股份", "bidder-b"),
        ("南方水利工程", "bidder-c"),
        ("北方城建集团", "bidder-d"),
        ("西部市政公司", "bidder-e"),
    ];
    let mut bidders = Vec::new();
    for (name, username) in bidder_names {
        let org = sandbox
            .org(OrgKind::Bidder, &format!("{name}有限公司"))
            .await?;
        bidders.push(party(org, Role::Bidder, username, name).await?);
    }
    println!("     2 centres, a tenderer, a regulator, a notary; a host, a supervisor, 5 custodians, 5 bidders");

    d.step("custodians make identity keys on their own devices and register them (proof of possession)");
    let mut identities = Vec::new();
    for c in &custodians {
        let k = sign::generate();
        c.client.register_ed25519("custodian_identity", &k).await?;
        identities.push(k);
    }
    d.check(
        identities.len() == 5,
        "5 custodian identity keys registered",
    )?;
    let supervisor_key = sign::generate();
    supervisor
        .client
        .register_ed25519("supervisor_identity", &supervisor_key)
        .await?;
    Ok(Cast {
        tenderer_org,
        regulator,
        host,
        supervisor,
        supervisor_key,
        custodians,
        identities,
        bidders,
    })
}
