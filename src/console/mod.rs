//! The web console (issue 18): HTTPS pages for organization
//! administrators (users, groups, shares, logs, retention), staff (their
//! own password and two-factor set-up) and the operator (organizations).
//!
//! It is one more way into the same administration as the CLI: every
//! change goes through `accounts::Admin` (scoping, policy) and is audited
//! through `app::admin_audit_event` under the signed-in user; logs are read
//! and exported with the CLI's `logs` code. Served by `serve` on its own
//! listener (`[console] listen`); see docs/console.md.

mod account;
mod http;
mod logs;
mod operator;
mod org_pages;
mod org_restore;
mod org_settings;
mod server;
mod session;
mod signin;
pub mod tls;
mod views;

use std::sync::Arc;
use std::time::SystemTime;

use crate::accounts::{Accounts, Actor, Admin, Role, UserRecord};
use crate::app::SinkAudit;
use crate::audit::{AuditLog, AuditSink, Event, EventKind};
use crate::engine::Server;

pub use http::{Req, Resp};
pub use server::serve;
pub use session::{Ended, Session, Sessions, Stage};
use views::Lang;

/// Everything the console reads and changes.
pub struct Console {
    /// Users, organizations, shares.
    pub accounts: Arc<Accounts>,
    /// Where console events go (the server's audit log).
    pub audit: Arc<dyn AuditSink>,
    /// The audit log itself, for the log viewer (`None`: auditing is off).
    pub audit_log: Option<Arc<AuditLog>>,
    /// Live configuration, the store (usage), connection counts.
    pub server: Arc<Server>,
    /// Database and data backups, for the read-only overview.
    pub backups: [Option<Arc<crate::backup::db::DbBackups>>; 2],
    /// The remote backups (restores by organization administrators).
    pub remote: Option<Arc<crate::backup::remote::Remote>>,
    /// Live SMB connections, for the sessions on the status page (what
    /// the control socket answers `smbvault status` from).
    pub registry: Arc<crate::net::Registry>,
    /// Verification results of database backup generations (a generation
    /// never changes once made, so each is checked once per process).
    backup_checks: parking_lot::Mutex<std::collections::HashMap<std::path::PathBuf, bool>>,
    /// Signed-in browsers.
    pub sessions: Sessions,
    admin_audit: SinkAudit,
}

impl Console {
    /// A console over the server's parts.
    pub fn new(
        accounts: Arc<Accounts>,
        audit: Arc<dyn AuditSink>,
        audit_log: Option<Arc<AuditLog>>,
        server: Arc<Server>,
        backups: [Option<Arc<crate::backup::db::DbBackups>>; 2],
        registry: Arc<crate::net::Registry>,
        remote: Option<Arc<crate::backup::remote::Remote>>,
    ) -> Self {
        let c = server.live().console.clone();
        let sessions = Sessions::new(
            std::time::Duration::from_secs(c.idle_timeout_secs.max(60)),
            std::time::Duration::from_secs(c.absolute_timeout_secs.max(300)),
        );
        Self {
            accounts,
            admin_audit: SinkAudit(audit.clone()),
            audit,
            audit_log,
            server,
            backups,
            remote,
            registry,
            backup_checks: Default::default(),
            sessions,
        }
    }

    /// Records a console access event (sign-in, sign-out) in the user's
    /// organization's access log.
    fn access_event(&self, req: &Req, org: Option<crate::types::OrgId>, user: &str, kind: EventKind) -> Event {
        let mut e = Event::new(SystemTime::now(), kind).user(user);
        if let Some(o) = org {
            e = e.org(o);
        }
        if let Some(p) = req.peer {
            e = e.client(p);
        }
        e
    }

    /// Answers one request (on a blocking thread).
    pub fn handle(&self, req: &Req) -> Resp {
        let lang = Lang::of(req);
        let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["static", "console.css"]) => {
                let mut r = Resp::html(String::new());
                r.content_type = "text/css; charset=utf-8";
                r.body = views::CSS.as_bytes().to_vec();
                return r;
            }
            // Browsers ask for it on every site; it must not look like a page.
            ("GET", ["favicon.ico"]) => return Resp::html(String::new()).status(404),
            ("GET", ["lang", l]) => {
                let l = if *l == "en" { "en" } else { "ja" };
                return Resp::redirect(http::safe_back(req.param("back"))).cookie("lang", l, Some(31_536_000));
            }
            (_, ["signin", ..]) => return signin::route(self, req, lang, &segs[1..]),
            _ => {}
        }
        let token = req.cookies.get(http::SESSION_COOKIE).cloned().unwrap_or_default();
        let session = match self.sessions.get(&token) {
            Ok(s) => s,
            Err(ended) => {
                if let Ended::Idle(u) | Ended::Expired(u) = ended
                    && let Ok(Some(rec)) = self.accounts.user(u)
                {
                    let reason = if matches!(ended, Ended::Idle(_)) { "idle" } else { "expired" };
                    let kind = EventKind::ConsoleSignOut { reason: reason.into() };
                    self.audit.record(self.access_event(req, Some(rec.org_id), &rec.qualified(), kind));
                }
                return Resp::redirect("/signin").clear_cookie(http::SESSION_COOKIE);
            }
        };
        // The account is read afresh on every request: a disabled, deleted
        // or demoted user loses the console at once, not at sign-out.
        let me = match self.accounts.user(session.user) {
            Ok(Some(u))
                if u.enabled
                    && !self.org_suspended(&u)
                    && !self.accounts.is_locked(u.id, SystemTime::now()).unwrap_or(true) =>
            {
                u
            }
            _ => {
                self.sessions.remove(&token);
                return Resp::redirect("/signin").clear_cookie(http::SESSION_COOKIE);
            }
        };
        let ctx = Ctx { c: self, req, lang, me, token, session };
        if req.method == "POST" && !ctx.csrf_ok() {
            return views::error(&ctx, 403, lang.t("The form was stale or forged (CSRF token missing or wrong); reload the page and try again.", "フォームが古いか偽造されています（CSRF トークンがないか不正です）。ページを再読み込みしてやり直してください。"));
        }
        match ctx.session.stage {
            Stage::NeedTotp => return Resp::redirect("/signin/totp"),
            Stage::MustEnrol if !matches!(segs.as_slice(), ["account", "totp", ..] | ["signout"]) => {
                return Resp::redirect("/account/totp");
            }
            _ => {}
        }
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", []) => Resp::redirect(&ctx.home()),
            ("POST", ["signout"]) => signin::sign_out(&ctx),
            (_, ["account", rest @ ..]) => account::route(&ctx, rest),
            (_, ["org", org, rest @ ..]) => org_pages::route(&ctx, org, rest),
            (_, ["operator", rest @ ..]) => operator::route(&ctx, rest),
            _ => views::error(&ctx, 404, lang.t("No such page.", "ページが見つかりません。")),
        }
    }

    fn org_suspended(&self, u: &UserRecord) -> bool {
        self.accounts.org(u.org_id).ok().flatten().is_none_or(|o| o.suspended)
    }
}

/// One request by a signed-in user.
pub struct Ctx<'a> {
    /// The console.
    pub c: &'a Console,
    /// The request.
    pub req: &'a Req,
    /// Page language.
    pub lang: Lang,
    /// The signed-in account, as of this request.
    pub me: UserRecord,
    /// The session cookie value.
    pub token: String,
    /// The session.
    pub session: Session,
}

impl Ctx<'_> {
    /// The form's CSRF token matches the session's (constant time).
    fn csrf_ok(&self) -> bool {
        let given = self.req.field("csrf");
        !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), self.session.csrf.as_bytes()))
    }

    /// The signed-in user as an administrator, if they are one.
    pub fn admin(&self) -> Option<Admin<'_>> {
        let actor = match self.me.role {
            Role::Operator => Actor::Operator { name: self.me.qualified() },
            Role::OrgAdmin => Actor::OrgAdmin { user: self.me.id, org: self.me.org_id, name: self.me.qualified() },
            Role::Member => return None,
        };
        Some(Admin::new(&self.c.accounts, actor, &self.c.admin_audit))
    }

    /// Where "/" leads for this user.
    pub fn home(&self) -> String {
        match self.me.role {
            Role::Operator => "/operator/orgs".into(),
            Role::OrgAdmin => format!("/org/{}/users", http::seg(&self.me.org)),
            Role::Member => "/account".into(),
        }
    }

    /// The audit sink for self-service changes.
    pub fn admin_audit(&self) -> &SinkAudit {
        &self.c.admin_audit
    }
}
