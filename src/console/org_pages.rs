//! `/org/{org}/…`: an organization's users, groups and shares, for its
//! administrators (and the operator). Every action is an `accounts::Admin`
//! call, so scoping is the CLI's: an administrator of another organization
//! gets 404 for the organization itself and 403/404 for anything named
//! inside it, whether it exists or not, and the attempt is audited.

use maud::{Markup, html};

use super::http::{Resp, seg};
use super::views::{self, Lang, Notice, csrf, role_name};
use super::{Ctx, logs, org_settings};
use crate::accounts::{Access, AccountsError, Admin, GranteeName, OrgRecord, Role, ShareOptions, names, password};

/// `/org/{org}/…`.
pub fn route(ctx: &Ctx<'_>, org: &str, rest: &[&str]) -> Resp {
    let l = ctx.lang;
    let Some(admin) = ctx.admin() else {
        return views::error(
            ctx,
            403,
            l.t("Only administrators may open this page.", "このページは管理者のみ利用できます。"),
        );
    };
    let o = match admin.org(Some(org), "use the console") {
        Ok(o) => o,
        Err(_) => return views::error(ctx, 404, l.t("No such organization.", "その組織はありません。")),
    };
    let p = OrgPage { ctx, admin, org: o };
    match (ctx.req.method.as_str(), rest) {
        ("GET", ["users"]) => p.users(&Notice::default(), 200),
        ("POST", ["users"]) => p.user_add(),
        ("POST", ["users", user, action]) => p.user_action(user, action),
        ("GET", ["groups"]) => p.groups(&Notice::default(), 200),
        ("POST", ["groups"]) => {
            p.done(p.admin.group_add(Some(&p.org.name), ctx.req.field("name").trim()).map(|_| ()), Page::Groups)
        }
        ("POST", ["groups", g, "delete"]) => {
            p.done(p.admin.group_delete(Some(&p.org.name), g).map(|_| ()), Page::Groups)
        }
        ("POST", ["groups", g, "members"]) => p.member(g),
        ("GET", ["shares"]) => p.shares(&Notice::default(), 200),
        ("POST", ["shares"]) => p.share_add(),
        ("POST", ["shares", share, "remove"]) => p.share_remove(share),
        ("POST", ["shares", share, "access"]) => p.access(share),
        ("POST", ["shares", share, "previous-versions"]) => p.previous_versions(share),
        (_, ["restore"]) => super::org_restore::route(ctx, &p.org),
        ("GET", ["logs"]) => logs::view(ctx, &p.org),
        ("GET", ["logs.csv"]) => logs::export(ctx, &p.org, logs::Export::Csv),
        ("GET", ["logs.jsonl"]) => logs::export(ctx, &p.org, logs::Export::Jsonl),
        (_, ["settings", rest @ ..]) => org_settings::route(ctx, &p.admin, &p.org, rest),
        _ => views::error(ctx, 404, l.t("No such page.", "ページが見つかりません。")),
    }
}

#[derive(Clone, Copy)]
enum Page {
    Users,
    Groups,
    Shares,
}

struct OrgPage<'a> {
    ctx: &'a Ctx<'a>,
    admin: Admin<'a>,
    org: OrgRecord,
}

/// The HTTP status for a refused administrative call.
pub fn status_of(e: &AccountsError) -> u16 {
    match e {
        AccountsError::Denied(_) => 403,
        AccountsError::NotFound { .. } => 404,
        AccountsError::Db(_) | AccountsError::Key(_) | AccountsError::Provision(_) => 500,
        _ => 400,
    }
}

impl OrgPage<'_> {
    fn l(&self) -> Lang {
        self.ctx.lang
    }

    fn base(&self) -> String {
        format!("/org/{}", seg(&self.org.name))
    }

    /// A user name from a URL or form: plain, or qualified with *this*
    /// organization. Another organization's name is "not found" here.
    fn user_name<'s>(&self, spec: &'s str) -> Result<&'s str, AccountsError> {
        match names::split_qualified(spec) {
            (Some(o), u) if names::fold_org(o) == names::fold_org(&self.org.name) => Ok(u),
            (Some(_), _) => Err(AccountsError::NotFound { what: "user", name: spec.into() }),
            (None, u) => Ok(u),
        }
    }

    fn render(&self, page: Page, notice: &Notice, status: u16) -> Resp {
        match page {
            Page::Users => self.users(notice, status),
            Page::Groups => self.groups(notice, status),
            Page::Shares => self.shares(notice, status),
        }
    }

    fn done(&self, r: Result<(), AccountsError>, page: Page) -> Resp {
        match r {
            Ok(()) => self.render(page, &Notice::ok(self.l().t("Saved.", "保存しました。")), 200),
            Err(e) => self.render(page, &Notice::err(e.to_string()), status_of(&e)),
        }
    }

    fn users(&self, notice: &Notice, status: u16) -> Resp {
        let (l, base) = (self.l(), self.base());
        let users = self.admin.user_list(Some(&self.org.name)).unwrap_or_default();
        let now = std::time::SystemTime::now();
        let body = html! {
            form.box method="post" action=(format!("{base}/users")) {
                (csrf(self.ctx))
                label { (l.t("New user", "新しいユーザー")) " " input id="new-user" name="name" required; }
                label { (l.t("Role", "役割")) " " select id="new-role" name="role" {
                    option value="member" { (role_name(l, Role::Member)) }
                    option value="org_admin" { (role_name(l, Role::OrgAdmin)) }
                } }
                button id="add-user" type="submit" { (l.t("Add (a one-time password is shown)", "追加（初期パスワードを表示）")) }
            }
            table id="users" {
                tr { th { (l.t("User", "ユーザー")) } th { (l.t("Role", "役割")) } th { (l.t("State", "状態")) } th { (l.t("Actions", "操作")) } }
                @for u in &users {
                    @let act = format!("{base}/users/{}", seg(&u.name));
                    tr {
                        td { (u.name) }
                        td { (role_name(l, u.role)) }
                        td {
                            @if !u.enabled { (l.t("disabled", "無効")) }
                            @else if u.locked_until.is_some_and(|t| t > now) { (l.t("locked out", "ロック中")) }
                            @else { (l.t("active", "有効")) }
                        }
                        td { @if u.role != Role::Operator {
                            (action(self.ctx, &act, if u.enabled { "disable" } else { "enable" }, if u.enabled { l.t("Disable", "無効化") } else { l.t("Enable", "有効化") }))
                            (action(self.ctx, &act, "reset", l.t("Reset password", "パスワード再発行")))
                            (action(self.ctx, &act, "unlock", l.t("Unlock", "ロック解除")))
                            (action(self.ctx, &act, "totp-reset", l.t("Reset 2FA", "2 段階認証リセット")))
                            (action(self.ctx, &act, if u.role == Role::Member { "make-admin" } else { "make-member" },
                                if u.role == Role::Member { l.t("Make administrator", "管理者にする") } else { l.t("Make staff", "スタッフにする") }))
                            (action(self.ctx, &act, "delete", l.t("Delete", "削除")))
                        } }
                    }
                }
            }
        };
        views::page(self.ctx, l.t("Users", "ユーザー"), notice, body).status(status)
    }

    fn one_time(&self, user: &str, pw: &str) -> Notice {
        let l = self.l();
        let label = format!(
            "{} {}{}",
            l.t("One-time password for", "初期パスワード："),
            user,
            l.t(" (shown only now):", "（この画面でのみ表示）：")
        );
        Notice {
            ok: Some(l.t("Saved.", "保存しました。").into()),
            secret: Some((label, pw.to_string())),
            ..Notice::default()
        }
    }

    fn user_add(&self) -> Resp {
        let req = &self.ctx.req;
        let role = if req.field("role") == "org_admin" { Role::OrgAdmin } else { Role::Member };
        let name = match self.user_name(req.field("name").trim()) {
            Ok(n) => n,
            Err(e) => return self.users(&Notice::err(e.to_string()), status_of(&e)),
        };
        let pw = password::generate();
        match self.admin.user_add(Some(&self.org.name), name, role, &pw) {
            Ok(u) => self.users(&self.one_time(&u.qualified(), &pw), 200),
            Err(e) => self.users(&Notice::err(e.to_string()), status_of(&e)),
        }
    }

    fn user_action(&self, user: &str, action: &str) -> Resp {
        let org = Some(self.org.name.as_str());
        let user = match self.user_name(user) {
            Ok(u) => u,
            Err(e) => return self.users(&Notice::err(e.to_string()), status_of(&e)),
        };
        let a = &self.admin;
        let r = match action {
            "enable" => a.user_set_enabled(org, user, true),
            "disable" => a.user_set_enabled(org, user, false),
            "unlock" => a.user_unlock(org, user),
            "totp-reset" => a.user_reset_totp(org, user),
            "make-admin" => a.user_set_role(org, user, Role::OrgAdmin),
            "make-member" => a.user_set_role(org, user, Role::Member),
            "delete" => a.user_delete(org, user),
            "reset" => {
                let pw = password::generate();
                return match a.user_passwd(org, user, &pw) {
                    Ok(u) => {
                        self.ctx.c.sessions.remove_user(u.id, None);
                        self.users(&self.one_time(&u.qualified(), &pw), 200)
                    }
                    Err(e) => self.users(&Notice::err(e.to_string()), status_of(&e)),
                };
            }
            _ => return views::error(self.ctx, 404, self.l().t("No such action.", "その操作はありません。")),
        };
        if let Ok(u) = &r
            && matches!(action, "disable" | "delete" | "make-member")
        {
            // Their open console sessions end now, not at their next click.
            self.ctx.c.sessions.remove_user(u.id, None);
        }
        self.done(r.map(|_| ()), Page::Users)
    }

    fn groups(&self, notice: &Notice, status: u16) -> Resp {
        let (l, base) = (self.l(), self.base());
        let groups = self.admin.group_list(Some(&self.org.name)).unwrap_or_default();
        let body = html! {
            form.box method="post" action=(format!("{base}/groups")) {
                (csrf(self.ctx))
                label { (l.t("New group", "新しいグループ")) " " input id="new-group" name="name" required; }
                button id="add-group" type="submit" { (l.t("Add", "追加")) }
            }
            table id="groups" {
                tr { th { (l.t("Group", "グループ")) } th { (l.t("Members", "メンバー")) } th { (l.t("Actions", "操作")) } }
                @for g in &groups {
                    @let act = format!("{base}/groups/{}", seg(&g.name));
                    tr {
                        td { (g.name) }
                        td { (g.members.join(", ")) }
                        td {
                            form.inline method="post" action=(format!("{act}/members")) {
                                (csrf(self.ctx))
                                input name="user" required size="12";
                                select name="op" { option value="add" { (l.t("add", "追加")) } option value="remove" { (l.t("remove", "削除")) } }
                                button type="submit" { (l.t("Apply", "適用")) }
                            }
                            (action(self.ctx, &act, "delete", l.t("Delete group", "グループ削除")))
                        }
                    }
                }
            }
        };
        views::page(self.ctx, l.t("Groups", "グループ"), notice, body).status(status)
    }

    fn member(&self, group: &str) -> Resp {
        let req = &self.ctx.req;
        let user = match self.user_name(req.field("user").trim()) {
            Ok(u) => u,
            Err(e) => return self.groups(&Notice::err(e.to_string()), status_of(&e)),
        };
        self.done(self.admin.group_member(Some(&self.org.name), group, user, req.field("op") != "remove"), Page::Groups)
    }

    fn shares(&self, notice: &Notice, status: u16) -> Resp {
        let (l, base) = (self.l(), self.base());
        let shares = self.admin.share_list(Some(&self.org.name)).unwrap_or_default();
        let body = html! {
            form.box method="post" action=(format!("{base}/shares")) {
                (csrf(self.ctx))
                label { (l.t("New share", "新しい共有")) " " input id="new-share" name="name" required size="14"; }
                label { (l.t("Comment", "コメント")) " " input id="new-share-comment" name="comment" size="20"; }
                label { (l.t("Default access", "既定のアクセス")) " " select id="new-share-access" name="default_access" {
                    option value="read_write" { "read_write" } option value="read" { "read" } option value="none" { "none" }
                } }
                button id="add-share" type="submit" { (l.t("Add share", "共有を追加")) }
            }
            @for s in &shares {
                @let entries = self.admin.share_access(Some(&self.org.name), &s.name).map(|(_, e)| e).unwrap_or_default();
                h2 { "\\\\" (self.ctx.c.server.live().server.name) "\\" (s.name) }
                p.muted {
                    @if !s.comment.is_empty() { (s.comment) " · " }
                    (l.t("Default for the organization's users:", "組織のユーザーの既定：")) " " (s.default_access.as_str())
                }
                form.inline method="post" action=(format!("{base}/shares/{}/previous-versions", seg(&s.name))) {
                    (csrf(self.ctx))
                    (l.t("Previous Versions (backup generations, read only):", "以前のバージョン（バックアップ世代・読み取り専用）："))
                    " " strong.pv-state { @if s.previous_versions { (l.t("on", "表示")) } @else { (l.t("off", "非表示")) } } " "
                    input type="hidden" name="on" value=(if s.previous_versions { "off" } else { "on" });
                    button type="submit" data-action="previous-versions" {
                        @if s.previous_versions { (l.t("Turn off", "非表示にする")) } @else { (l.t("Turn on", "表示する")) }
                    }
                }
                table {
                    tr { th { (l.t("User or group", "ユーザー／グループ")) } th { (l.t("Access", "アクセス")) } }
                    @for e in &entries { tr { td { (e.name) } td { (e.access.as_str()) } } }
                }
                form.box method="post" action=(format!("{base}/shares/{}/access", seg(&s.name))) {
                    (csrf(self.ctx))
                    select name="kind" { option value="user" { (l.t("user", "ユーザー")) } option value="group" { (l.t("group", "グループ")) } }
                    input name="name" required size="14";
                    select name="access" {
                        option value="read" { "read" } option value="read_write" { "read_write" }
                        option value="none" { "none" } option value="revoke" { (l.t("remove entry", "設定を削除")) }
                    }
                    button type="submit" { (l.t("Set access", "アクセスを設定")) }
                }
                (action(self.ctx, &format!("{base}/shares/{}", seg(&s.name)), "remove", l.t("Remove share…", "共有を削除…")))
            }
        };
        views::page(self.ctx, l.t("Shares", "共有"), notice, body).status(status)
    }

    /// Adds a share as `smbvault share add` does: recorded in accounts.db
    /// with the CLI's deferred provisioning, so the serving engine creates
    /// its root directory at the first tree connect
    /// (`engine::Server::share_root`).
    fn share_add(&self) -> Resp {
        let req = &self.ctx.req;
        let r = Access::parse(req.field("default_access")).and_then(|default_access| {
            let opts =
                ShareOptions { comment: req.field("comment").trim().to_string(), encryption: None, default_access };
            let prov = crate::app::DeferredProvisioner { keys: Some(self.ctx.c.server.store.clone()) };
            self.admin.share_add(Some(&self.org.name), req.field("name").trim(), &opts, &prov)
        });
        self.done(r.map(|_| ()), Page::Shares)
    }

    /// Removes a share as `smbvault share remove` does (its files stay in
    /// storage, erased with the organization), after the administrator
    /// types its name: clients lose it at once.
    fn share_remove(&self, share: &str) -> Resp {
        let l = self.l();
        let s = match self.admin.share(Some(&self.org.name), share, "remove") {
            Ok(s) if s.org_id == self.org.id => s,
            Ok(_) => return views::error(self.ctx, 404, l.t("No such share.", "その共有はありません。")),
            Err(e) => return self.shares(&Notice::err(e.to_string()), status_of(&e)),
        };
        if self.ctx.req.field("confirm") != s.name {
            let act = format!("{}/shares/{}/remove", self.base(), seg(&s.name));
            let body = html! {
                p.err { "\\\\" (self.ctx.c.server.live().server.name) "\\" (s.name) " "
                    (l.t("will be removed: its users lose it at once. Its files stay in storage until the organization is erased.",
                         "を削除します。利用者はすぐに使えなくなります。ファイルは組織の消去までストレージに残ります。")) }
                form.box method="post" action=(act) {
                    (csrf(self.ctx))
                    label { (l.t("Type the share's name to confirm:", "確認のため共有名を入力してください：")) " "
                        input id="confirm" name="confirm" required; }
                    button.danger id="confirm-go" type="submit" { (l.t("Remove", "削除")) }
                }
                p { a href=(format!("{}/shares", self.base())) { (l.t("Cancel", "キャンセル")) } }
            };
            return views::page(self.ctx, l.t("Confirm", "確認"), &Notice::default(), body);
        }
        self.done(self.admin.share_remove(Some(&self.org.name), &s.name, None).map(|_| ()), Page::Shares)
    }

    /// Turns the share's Previous Versions on or off, as `smbvault share
    /// set NAME --previous-versions on|off` does.
    fn previous_versions(&self, share: &str) -> Resp {
        match self.admin.share(Some(&self.org.name), share, "change") {
            Ok(s) if s.org_id == self.org.id => {}
            Ok(_) => return views::error(self.ctx, 404, self.l().t("No such share.", "その共有はありません。")),
            Err(e) => return self.shares(&Notice::err(e.to_string()), status_of(&e)),
        }
        let ch = crate::accounts::ShareChange {
            previous_versions: Some(self.ctx.req.field("on") == "on"),
            ..Default::default()
        };
        self.done(self.admin.share_set(Some(&self.org.name), share, &ch).map(|_| ()), Page::Shares)
    }

    fn access(&self, share: &str) -> Resp {
        let req = &self.ctx.req;
        // The share is looked up in the organization of the URL; the
        // id check below stays as a second guard.
        match self.admin.share(Some(&self.org.name), share, "change access of") {
            Ok(s) if s.org_id == self.org.id => {}
            Ok(_) => return views::error(self.ctx, 404, self.l().t("No such share.", "その共有はありません。")),
            Err(e) => return self.shares(&Notice::err(e.to_string()), status_of(&e)),
        }
        let name = req.field("name").trim();
        let who = if req.field("kind") == "group" {
            GranteeName::Group(name)
        } else {
            match self.user_name(name) {
                Ok(u) => GranteeName::User(u),
                Err(e) => return self.shares(&Notice::err(e.to_string()), status_of(&e)),
            }
        };
        let r = match req.field("access") {
            "revoke" => self.admin.share_revoke(Some(&self.org.name), share, who).map(|_| ()),
            a => match Access::parse(a) {
                Ok(acc) => self.admin.share_grant(Some(&self.org.name), share, who, acc),
                Err(e) => Err(e),
            },
        };
        self.done(r, Page::Shares)
    }
}

/// A one-button form posting to `{base}/{action}`.
fn action(ctx: &Ctx<'_>, base: &str, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("{base}/{action}")) {
            (csrf(ctx))
            button type="submit" data-action=(action) { (label) }
        }
    }
}
