//! Page layout, the stylesheet and small shared pieces. maud escapes every
//! interpolated value, so names from clients (file names in the logs, user
//! and group names) are text, never markup. There is no script at all.

use std::time::SystemTime;

use maud::{DOCTYPE, Markup, html};

use super::Ctx;
use super::http::{Req, Resp, seg};
use crate::accounts::Role;

/// Page language: from the `lang` cookie (the switch), else the first of
/// ja/en in Accept-Language, else Japanese (the first customers' own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// The language of a request.
    pub fn of(req: &Req) -> Lang {
        match req.cookies.get("lang").map(String::as_str) {
            Some("en") => return Lang::En,
            Some("ja") => return Lang::Ja,
            _ => {}
        }
        let mut best = (Lang::Ja, -1.0f32);
        for part in req.accept_language.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok())).unwrap_or(1.0);
            let l = if tag.starts_with("ja") {
                Lang::Ja
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if q > best.1 {
                best = (l, q);
            }
        }
        best.0
    }

    /// Picks the text for this language.
    pub fn t(self, en: &'static str, ja: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Ja => ja,
        }
    }

    fn code(self) -> &'static str {
        self.t("en", "ja")
    }
}

/// `2026-11-25 17:00:00 JST`.
pub fn jst(t: SystemTime) -> String {
    let s = crate::audit::format_jst(t);
    let s = s.get(..19).unwrap_or(&s).replace('T', " ");
    format!("{s} JST")
}

/// The hidden CSRF field every form carries.
pub fn csrf(ctx: &Ctx<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.session.csrf); }
}

/// A notice above the page content.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// Good news.
    pub ok: Option<String>,
    /// Bad news.
    pub err: Option<String>,
    /// A secret to show exactly once (one-time password, TOTP secret).
    pub secret: Option<(String, String)>,
}

impl Notice {
    /// Success text.
    pub fn ok(s: impl Into<String>) -> Self {
        Self { ok: Some(s.into()), ..Self::default() }
    }
    /// Error text.
    pub fn err(s: impl Into<String>) -> Self {
        Self { err: Some(s.into()), ..Self::default() }
    }
}

/// The navigation of the signed-in user's role.
fn nav(ctx: &Ctx<'_>) -> Markup {
    let l = ctx.lang;
    let org = seg(&ctx.me.org);
    html! {
        nav {
            @if ctx.me.role >= Role::OrgAdmin {
                a href=(format!("/org/{org}/users")) { (l.t("Users", "ユーザー")) }
                a href=(format!("/org/{org}/groups")) { (l.t("Groups", "グループ")) }
                a href=(format!("/org/{org}/shares")) { (l.t("Shares", "共有")) }
                a href=(format!("/org/{org}/logs")) { (l.t("Logs", "ログ")) }
                a href=(format!("/org/{org}/restore")) { (l.t("Restore", "復元")) }
                a href=(format!("/org/{org}/settings")) { (l.t("Organization", "組織設定")) }
            }
            @if ctx.me.role == Role::Operator {
                a href="/operator/orgs" { (l.t("Organizations", "組織一覧")) }
                a href="/operator/status" { (l.t("Status", "状態")) }
            }
            a href="/account" { (l.t("My account", "アカウント")) }
        }
    }
}

fn lang_switch(lang: Lang, back: &str) -> Markup {
    let back = form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>();
    html! {
        span.lang {
            @if lang == Lang::Ja { a id="lang-en" href=(format!("/lang/en?back={back}")) { "English" } }
            @else { a id="lang-ja" href=(format!("/lang/ja?back={back}")) { "日本語" } }
        }
    }
}

/// A whole page for a signed-in user.
pub fn page(ctx: &Ctx<'_>, title: &str, notice: &Notice, body: Markup) -> Resp {
    let l = ctx.lang;
    let head = html! {
        header {
            strong { "smbvault" }
            span.who { (ctx.me.qualified()) " (" (role_name(l, ctx.me.role)) ")" }
            (lang_switch(l, &ctx.req.path))
            form.inline method="post" action="/signout" {
                (csrf(ctx))
                button id="signout" type="submit" { (l.t("Sign out", "サインアウト")) }
            }
        }
        @if ctx.session.stage == super::Stage::Full { (nav(ctx)) }
    };
    Resp::html(document(l, title, html! { (head) main { h1 { (title) } (notices(notice)) (body) } }))
}

/// A page without a session (sign-in).
pub fn bare(lang: Lang, path: &str, title: &str, notice: &Notice, body: Markup) -> Resp {
    let head = html! { header { strong { "smbvault" } (lang_switch(lang, path)) } };
    Resp::html(document(lang, title, html! { (head) main.narrow { h1 { (title) } (notices(notice)) (body) } }))
}

fn notices(n: &Notice) -> Markup {
    html! {
        @if let Some(t) = &n.ok { p.ok role="status" { (t) } }
        @if let Some(t) = &n.err { p.err role="alert" { (t) } }
        @if let Some((label, s)) = &n.secret { p.secret { (label) " " code id="secret" { (s) } } }
    }
}

fn document(lang: Lang, title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – smbvault" }
                link rel="stylesheet" href="/static/console.css";
            }
            body { (body) }
        }
    }
    .into_string()
}

/// An error page with `status`.
pub fn error(ctx: &Ctx<'_>, status: u16, text: &str) -> Resp {
    let title = match status {
        403 => ctx.lang.t("Forbidden", "権限がありません"),
        404 => ctx.lang.t("Not found", "見つかりません"),
        _ => ctx.lang.t("Error", "エラー"),
    };
    page(ctx, title, &Notice::err(text), html! {}).status(status)
}

/// A role in the page language.
pub fn role_name(l: Lang, r: Role) -> &'static str {
    match r {
        Role::Member => l.t("staff", "スタッフ"),
        Role::OrgAdmin => l.t("administrator", "管理者"),
        Role::Operator => l.t("operator", "運用者"),
    }
}

/// Bytes for people: `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", U[i]) }
}

/// The stylesheet (served from /static/console.css: the CSP allows no inline style).
pub const CSS: &str = include_str!("console.css");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_choice() {
        let mut r = Req { accept_language: "en-US,en;q=0.9,ja;q=0.8".into(), ..Req::default() };
        assert_eq!(Lang::of(&r), Lang::En);
        r.accept_language = "fr-FR, ja;q=0.5, en;q=0.4".into();
        assert_eq!(Lang::of(&r), Lang::Ja);
        r.accept_language = "de".into();
        assert_eq!(Lang::of(&r), Lang::Ja, "neither named: Japanese");
        r.cookies.insert("lang".into(), "en".into());
        assert_eq!(Lang::of(&r), Lang::En, "the switch wins");
    }

    #[test]
    fn times_and_sizes() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_000_000);
        assert_eq!(jst(t), "2025-11-25 01:00:00 JST");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 << 30), "10.0 GiB");
    }
}
