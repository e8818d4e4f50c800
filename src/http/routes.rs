//! The route table: every endpoint the server answers, with its method,
//! path, tag and summary, and its handler — whose argument and return types
//! describe it (`api_doc`). `configure` registers the table; `/api/openapi.json`
//! is generated from it; the authorisation test has a row for each.

use actix_web::dev::Handler;
use actix_web::http::Method;
use actix_web::{web, FromRequest, Responder, Route};

use super::api_doc::{self, DescribeArgs, DescribeResponse, Document, OpDoc, Operation};
use super::{
    accounts, bids, evaluation, keys, log, opening, public, room, sections, session, system,
};

/// One endpoint.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub route: Route,
    describe: fn(&mut OpDoc),
}

fn describe_with<A: DescribeArgs, R: DescribeResponse>(op: &mut OpDoc) {
    A::describe(op);
    R::describe(op);
}

/// An endpoint whose description comes from its handler's types.
fn ep<F, Args>(
    method: Method,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    handler: F,
) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + DescribeArgs + 'static,
    F::Output: Responder + DescribeResponse + 'static,
{
    Endpoint {
        route: web::method(method.clone()).to(handler),
        method,
        path,
        tag,
        summary,
        describe: describe_with::<Args, F::Output>,
    }
}

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;

/// Every endpoint.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        // The front end and operations.
        ep(GET, "/", "front end", "The public landing page (HTML)", system::index),
        ep(GET, "/static/{file}", "front end", "Static assets of the front end", system::asset),
        ep(GET, "/room", "front end", "The opening room's public page (HTML; ?section=ID, ?lang=zh|en)", system::room_page),
        ep(GET, "/healthz", "operations", "Health: backend kind and schema version", system::healthz),
        ep(GET, "/metrics", "operations", "Prometheus metrics (text exposition format)", system::metrics),
        ep(GET, "/api/openapi.json", "operations", "This description", system::openapi),
        // Accounts.
        ep(POST, "/api/auth/register", "accounts", "Register a bidder company and its first user (投标人注册)", accounts::register),
        ep(POST, "/api/auth/login", "accounts", "Sign in", accounts::login),
        ep(POST, "/api/auth/logout", "accounts", "Sign out (revokes this session)", accounts::logout),
        ep(POST, "/api/auth/session", "accounts", "Sign in from a browser: sets the session cookie (HttpOnly) and the CSRF token to send as X-CSRF-Token", session::open),
        ep(DELETE, "/api/auth/session", "accounts", "Sign out a browser session and clear its cookies", session::close),
        ep(GET, "/api/auth/me", "accounts", "The signed-in user and organisation", accounts::me),
        ep(POST, "/api/auth/verify-email", "accounts", "Verify an e-mail address with the token from the mail", accounts::verify_email),
        ep(POST, "/api/auth/resend-verification", "accounts", "Send a new verification link (answers the same for any name)", accounts::resend_verification),
        ep(GET, "/api/admin/organisations", "administration", "List organisations (admin)", accounts::list_orgs),
        ep(POST, "/api/admin/organisations", "administration", "Create an organisation (admin)", accounts::create_org),
        ep(GET, "/api/admin/users", "administration", "List users (admin)", accounts::list_users),
        ep(POST, "/api/admin/users", "administration", "Create a user (admin); a verification mail is sent", accounts::create_user),
        ep(POST, "/api/admin/users/{id}/disable", "administration", "Disable a user and end their sessions (admin)", accounts::disable_user),
        ep(POST, "/api/admin/users/{id}/enable", "administration", "Re-enable a user (admin)", accounts::enable_user),
        ep(POST, "/api/admin/users/{id}/revoke-sessions", "administration", "End every session of a user (admin)", accounts::revoke_sessions),
        // Keys.
        ep(POST, "/api/keys/challenges", "keys", "Ask for a key-registration challenge", keys::challenge),
        ep(POST, "/api/keys", "keys", "Register (or rotate) a key with proof of possession", keys::register),
        ep(GET, "/api/keys", "keys", "The caller's keys with their history", keys::list),
        // Projects and sections.
        ep(GET, "/api/projects", "projects", "Projects the caller's organisation runs, owns or supervises", sections::list_projects),
        ep(POST, "/api/projects", "projects", "Create a project (host)", sections::create_project),
        ep(GET, "/api/projects/{id}", "projects", "A project and its sections", sections::get_project),
        ep(POST, "/api/projects/{id}/sections", "sections", "Create a draft section (host)", sections::create_section),
        ep(GET, "/api/sections/{id}", "sections", "A section as its host, tenderer, supervisor or custodians see it", sections::get_section),
        ep(PUT, "/api/sections/{id}", "sections", "Replace a draft's settings (host; drafts only)", sections::update_section),
        ep(POST, "/api/sections/{id}/publish", "sections", "Publish a draft (host); every problem is listed", sections::publish),
        ep(POST, "/api/sections/{id}/amendments", "sections", "Publish an amendment (澄清/修改); registered bidders are notified; the deadline moves out if fewer than 15 days would remain", sections::amend),
        ep(POST, "/api/sections/{id}/cancel", "sections", "Cancel a section with a reason (host)", sections::cancel),
        ep(POST, "/api/sections/{id}/documents", "sections", "Upload a tender document (raw body, streamed)", sections::upload_document),
        ep(GET, "/api/sections/{id}/documents/{doc}", "sections", "Download a document (host, tenderer, supervisor, custodians)", sections::download_document),
        ep(DELETE, "/api/sections/{id}/documents/{doc}", "sections", "Delete a document not yet published (host)", sections::delete_document),
        ep(POST, "/api/sections/{id}/custodian-key", "keys", "Register a custodian's X25519 key for this section (custodian; before publication)", keys::section_key),
        ep(POST, "/api/sections/{id}/registration", "sections", "Register as a bidder for the section (获取招标文件); never disclosed", sections::register_bidder),
        ep(GET, "/api/sections/{id}/events", "sections", "The section's event record", sections::events),
        ep(GET, "/api/sections/{id}/audit", "sections", "The section's audit trail (host, supervisor)", sections::audit),
        // The public read side.
        ep(GET, "/api/public/sections", "public", "Search published sections", public::list),
        ep(GET, "/api/public/sections/{id}", "public", "A published section's notice", public::detail),
        ep(GET, "/api/public/sections/{id}/params", "public", "The published parameters, byte for byte as hashed (JCS); X-Params-Hash carries the SHA-256", public::params),
        ep(GET, "/api/public/sections/{id}/documents/{doc}", "public", "Download a published tender document", sections::public_document),
        ep(GET, "/api/public/platform-key", "public", "The platform's Ed25519 public key (receipts, checkpoints)", public::platform_key),
        ep(GET, "/api/public/sections/{id}/manifest", "public", "The sealed section's manifest (accepted envelope hashes and their Merkle root) and its log position", bids::manifest),
        ep(GET, "/api/public/sections/{id}/manifest/proof", "public", "Inclusion proof of one envelope hash in the manifest tree", bids::manifest_proof),
        ep(GET, "/api/public/sections/{id}/transcript", "public", "The section's transcript (kaibiao-transcript/1), checkable offline with `kaibiao verify`", bids::transcript),
        // Sealed bids (bidders).
        ep(POST, "/api/bids", "bids", "Submit a signed sealed-bid/1 envelope (the first step of a submission)", bids::submit),
        ep(GET, "/api/bids", "bids", "Your organisation's submissions", bids::list),
        ep(GET, "/api/bids/{hash}", "bids", "One of your submissions, with its receipt once complete", bids::status),
        ep(PUT, "/api/bids/{hash}/parts/{part}", "bids", "Upload a part's ciphertext from `offset` (resumable, streamed)", bids::upload),
        ep(POST, "/api/bids/{hash}/withdraw", "bids", "Withdraw your bid with a signed statement (before the deadline)", bids::withdraw),
        // The opening (开标) and its room.
        ep(GET, "/api/sections/{id}/room", "opening", "The opening room's WebSocket (upgrade). Frames: hello, snapshot, event, presence, pong, error (docs/PROTOCOL.md, \"The opening room\")", room::socket),
        ep(POST, "/api/sections/{id}/room/tickets", "opening", "A one-minute ticket to join the room's WebSocket as yourself (bound to this section and your session)", opening::ticket),
        ep(GET, "/api/sections/{id}/opening", "opening", "The room's snapshot in the caller's view (public without a token), with the server's clock", opening::view),
        ep(POST, "/api/sections/{id}/opening/signin/open", "opening", "Open bidder sign-in (签到) before the deadline", opening::open_signin),
        ep(POST, "/api/sections/{id}/opening/signin", "opening", "Sign in to the opening (签到); before the deadline nobody learns who signed in", opening::sign_in),
        ep(POST, "/api/sections/{id}/opening/key-releases", "opening", "Release your per-section custodian key (kaibiao-key-release/1, signed by your identity key)", opening::release_key),
        ep(POST, "/api/sections/{id}/opening/decryptions", "opening", "Hand over the bid master key of your own bid (the bidders modes)", opening::decrypt),
        ep(POST, "/api/sections/{id}/opening/extend", "opening", "Extend the decryption window, with a reason", opening::extend),
        ep(POST, "/api/sections/{id}/opening/incidents", "opening", "Declare a platform incident; pauses the window's clock", opening::incident),
        ep(POST, "/api/sections/{id}/opening/incidents/{incident}/countersign", "opening", "Uphold a declared incident by countersigning its ruling (kaibiao-incident-ruling/1)", opening::countersign_incident),
        ep(POST, "/api/sections/{id}/opening/resume", "opening", "Resume the window after an incident (the paused time is added)", opening::resume),
        ep(POST, "/api/sections/{id}/opening/confirmations", "opening", "Confirm the announced record by signing its hash (kaibiao-opening-confirmation/1)", opening::confirm),
        ep(POST, "/api/sections/{id}/opening/objections", "opening", "Raise an objection (异议) to the record", opening::object),
        ep(POST, "/api/sections/{id}/opening/objections/{objection}/answer", "opening", "Answer an objection on the record (once)", opening::answer),
        ep(POST, "/api/sections/{id}/opening/close", "opening", "Close the opening: the platform signs the opening record (kaibiao-opening-closing/1)", opening::close),
        ep(POST, "/api/sections/{id}/opening/countersign", "opening", "Countersign the closed opening record", opening::countersign),
        ep(POST, "/api/sections/{id}/opening/notices", "opening", "Post a notice to the room", opening::notice),
        ep(GET, "/api/public/sections/{id}/opening-record", "opening", "The opening record (开标记录, kaibiao-opening-record/1) with its hash, confirmations, objections and signatures", opening::record),
        ep(GET, "/api/public/sections/{id}/opening-record.html", "opening", "The opening record as a printable page (Chinese first, English second)", opening::record_html),
        // Remote expert evaluation.
        ep(GET, "/api/experts.csv", "evaluation", "The expert pool as CSV (id, centre, name, email, specialties, employer, related_orgs, related_people as digests, available)", evaluation::pool_export),
        ep(PUT, "/api/experts.csv", "evaluation", "Import experts from CSV (inserted or replaced by id); the whole file is checked first and nothing changes if any row is wrong", evaluation::pool_import),
        ep(POST, "/api/sections/{id}/evaluation/draw/commitments", "evaluation", "A contributor to the draw's seed (the supervisor of record, or a partner centre the committee is drawn from) commits to a value, signed with its key over {section_id, party, commitment} (kaibiao/draw-contribution/v1), before the draw is asked for", evaluation::commit_contribution),
        ep(POST, "/api/sections/{id}/evaluation/draw", "evaluation", "Ask for the evaluation committee's draw (专家抽取): requirements per specialty with reserves, the centres to draw from, tenderer representatives; needs every contributor's commitment; the platform seed's commitment, the pool snapshot's and the parties' hashes are logged and the time to reveal starts", evaluation::draw),
        ep(POST, "/api/sections/{id}/evaluation/draw/reveals", "evaluation", "A contributor reveals the value it committed to; the last value in draws the committee (a value not revealed in time is logged as withheld and counts as zero)", evaluation::reveal_contribution),
        ep(GET, "/api/sections/{id}/evaluation/draw", "evaluation", "The draw's seed as it stands, for the host and the supervisors: who committed, who contributes, until when, whether the committee is drawn", evaluation::draw_seed),
        ep(GET, "/api/sections/{id}/evaluation", "evaluation", "The evaluation's phase, seat counts by specialty and status, and (when finished) the result; never the experts' names", evaluation::status),
        ep(POST, "/api/sections/{id}/evaluation/finish", "evaluation", "Compute the result from the signed reviews and scores (price score by the declared formula, aggregation, ranking, top three) and log its hash", evaluation::finish),
        ep(POST, "/api/evaluation/answer", "evaluation", "A drawn expert confirms or declines, with the token from the call e-mail; a decline calls the next reserve of the specialty", evaluation::answer),
        ep(POST, "/api/sections/{id}/evaluation/pass", "evaluation", "This centre as the home centre: an expert of its own pool (matched by the account's verified e-mail) with a confirmed seat gets a pass signed with the platform key", evaluation::home_pass),
        ep(POST, "/api/sections/{id}/evaluation/admit", "evaluation", "Admit an expert pass (expert-pass/1) signed by a trusted centre for this section; the pass's key then signs the expert's reviews and scores", evaluation::admit),
        ep(POST, "/api/sections/{id}/evaluation/votes", "evaluation", "An admitted expert's signed qualification review of one bid (pass, or fail with a reason); when all are in, the majority decides", evaluation::vote),
        ep(POST, "/api/sections/{id}/evaluation/scores", "evaluation", "An admitted expert's signed score for one item of one qualified bid (group-committed, durable when answered)", evaluation::score),
        ep(POST, "/api/sections/{id}/evaluation/report/signatures", "evaluation", "An admitted expert signs the evaluation report's hash, agreeing or recording dissent (once); silence until the signing time ends counts as agreement", evaluation::sign_report),
        ep(POST, "/api/sections/{id}/evaluation/publish", "evaluation", "Publish the candidates (公示) once every expert signed or the signing time ended; reveals the draw's seed and the committee", evaluation::publish),
        ep(POST, "/api/sections/{id}/publicity/objections", "evaluation", "A bidder of the section objects to the publicised result; publicity pauses until every objection is answered", evaluation::object),
        ep(POST, "/api/sections/{id}/publicity/objections/{objection}/answer", "evaluation", "The tenderer answers an objection (once); with none open, publicity resumes and its end moves by the pause", evaluation::answer_objection),
        ep(GET, "/api/public/sections/{id}/result", "evaluation", "The published result: candidates, ranking, qualification, the committee, the report with every signature and dissent, objections and answers", evaluation::result),
        ep(POST, "/api/sections/{id}/evaluation/outliers", "evaluation", "A flagged expert (total far from the panel's median) confirms the score with a signed reason, once", evaluation::confirm_outlier),
        ep(POST, "/api/sections/{id}/evaluation/recusals", "evaluation", "A member recuses (回避) mid-session with a signed reason; the member's reviews and scores stop counting and the next reserve of the specialty is called", evaluation::recuse),
        ep(POST, "/api/sections/{id}/evaluation/clarifications", "evaluation", "An expert asks a bidder to clarify (澄清) with a time limit; the bidder's users are told by e-mail", evaluation::ask_clarification),
        ep(POST, "/api/sections/{id}/clarifications/{clarification}/answer", "evaluation", "The bidder answers a clarification once, before its time limit, signed with its registered signing key over {section_id, clarification_id, bid, answer} (kaibiao/clarification-answer/v1)", evaluation::answer_clarification),
        // The transparency log.
        ep(GET, "/api/log/checkpoint", "log", "The latest (or a given size's) platform-signed checkpoint", log::checkpoint),
        ep(GET, "/api/log/entries", "log", "Log leaves [start, end) (at most 1000)", log::entries),
        ep(GET, "/api/log/proof/inclusion", "log", "RFC 9162 inclusion proof", log::inclusion),
        ep(GET, "/api/log/proof/consistency", "log", "RFC 9162 consistency proof", log::consistency),
    ]
}

/// `(method, path)` of every endpoint, for the authorisation test.
pub fn route_table() -> Vec<(Method, &'static str)> {
    endpoints()
        .into_iter()
        .map(|e| (e.method, e.path))
        .collect()
}

/// The API description of every endpoint.
pub fn api_description() -> Document {
    let eps = endpoints();
    api_doc::document(
        eps.iter()
            .map(|e| {
                let mut doc = OpDoc::default();
                (e.describe)(&mut doc);
                Operation {
                    method: &e.method,
                    path: e.path,
                    tag: e.tag,
                    summary: e.summary,
                    doc,
                }
            })
            .collect(),
    )
}
