//! Requests and responses of the console, independent of hyper: the
//! handlers are plain functions from [`Req`] to [`Resp`] (run on a
//! blocking thread: they hash passwords and read SQLite and the logs).
//! Every response carries the security headers.

use std::collections::HashMap;
use std::net::SocketAddr;

/// A parsed request.
#[derive(Debug, Default, Clone)]
pub struct Req {
    /// "GET", "POST", ….
    pub method: String,
    /// Path segments, percent-decoded (`/org/経理/users` → ["org", "経理", "users"]).
    pub segs: Vec<String>,
    /// The raw path (for redirects back to it).
    pub path: String,
    /// Query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// `application/x-www-form-urlencoded` body fields (POST).
    pub form: HashMap<String, String>,
    /// Cookies.
    pub cookies: HashMap<String, String>,
    /// `Accept-Language`.
    pub accept_language: String,
    /// The browser's address.
    pub peer: Option<SocketAddr>,
}

impl Req {
    /// Splits and decodes a path and query string.
    pub fn set_target(&mut self, path: &str, query: Option<&str>) {
        self.path = path.to_string();
        self.segs = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        if let Some(q) = query {
            self.query = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        }
    }

    /// Parses a `Cookie:` header.
    pub fn add_cookies(&mut self, header: &str) {
        for part in header.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
    }

    /// Parses a form body.
    pub fn set_form(&mut self, body: &[u8]) {
        self.form = form_urlencoded::parse(body).into_owned().collect();
    }

    /// A form field, "" when absent.
    pub fn field(&self, k: &str) -> &str {
        self.form.get(k).map_or("", String::as_str)
    }

    /// A query parameter, "" when absent.
    pub fn param(&self, k: &str) -> &str {
        self.query.get(k).map_or("", String::as_str)
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (`Location`, `Set-Cookie`, `Content-Disposition`).
    pub headers: Vec<(&'static str, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// Hold the answer back by the logon failure delay (failed sign-in).
    pub delay: bool,
}

/// Name of the session cookie. `__Host-` makes browsers insist on Secure,
/// Path=/ and no Domain, so no other host can set or read it.
pub const SESSION_COOKIE: &str = "__Host-smbvault";
/// Name of the sign-in form's CSRF cookie (double submit: there is no
/// session before the password is checked).
pub const SIGNIN_COOKIE: &str = "__Host-smbvault-signin";

impl Resp {
    /// 200 with an HTML page.
    pub fn html(body: String) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            content_type: "text/html; charset=utf-8",
            body: body.into(),
            delay: false,
        }
    }

    /// A page with another status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// 303 See Other to a local path.
    pub fn redirect(to: &str) -> Self {
        let mut r = Self::html(String::new()).status(303);
        r.headers.push(("Location", to.to_string()));
        r
    }

    /// A download.
    pub fn file(content_type: &'static str, name: &str, body: Vec<u8>) -> Self {
        let mut r = Self { status: 200, headers: Vec::new(), content_type, body, delay: false };
        r.headers.push(("Content-Disposition", format!("attachment; filename=\"{name}\"")));
        r
    }

    /// Adds a Set-Cookie: Secure, HttpOnly, SameSite=Strict always.
    pub fn cookie(mut self, name: &str, value: &str, max_age: Option<u64>) -> Self {
        let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
        self.headers.push(("Set-Cookie", format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}")));
        self
    }

    /// Deletes a cookie.
    pub fn clear_cookie(self, name: &str) -> Self {
        self.cookie(name, "", Some(0))
    }
}

/// Headers on every answer. No script at all may run (`script-src` is not
/// granted), styles only from our own stylesheet, no framing, and forms
/// may post only back to us.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("Strict-Transport-Security", "max-age=31536000"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
];

/// A local path to go back to after a switch: only `/…`, never `//host`
/// or `/\host` (an open redirect would help phishing).
pub fn safe_back(s: &str) -> &str {
    if s.starts_with('/') && !s.starts_with("//") && !s.starts_with("/\\") && !s.contains(['\r', '\n']) {
        s
    } else {
        "/"
    }
}

/// Percent-encodes one path segment (org and user names may be Japanese).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_redirects() {
        let mut r = Req::default();
        r.set_target(&format!("/org/{}/users", seg("経理")), Some("a=1&b=%E3%81%82"));
        assert_eq!(r.segs, ["org", "経理", "users"]);
        assert_eq!(r.param("b"), "あ");
        assert_eq!(safe_back("//evil.example/"), "/");
        assert_eq!(safe_back("/\\evil"), "/");
        assert_eq!(safe_back("/org/x/logs?a=1"), "/org/x/logs?a=1");
    }
}
