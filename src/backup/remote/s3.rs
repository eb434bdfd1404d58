//! A target of kind `s3`: any S3-compatible object store. Requests are
//! signed by `rusty-s3` (AWS Signature V4, presigned URLs) and sent with
//! `ureq`; this file only strings the calls together.
//!
//! Large objects are multipart uploads (parts of `part_size`, at least the
//! 5 MiB S3 asks for). The upload id is journaled before the first part;
//! an interrupted upload of the same key is resumed: the parts the store
//! already has (ListParts) whose size and ETag (the MD5 of the part, which
//! we recompute from our copy) match are kept, the rest are sent again.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use md5::{Digest, Md5};
use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2, ListParts};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::objects::{ObjectInfo, ObjectStore, Sent, Uploader, read_range};

/// Smallest part S3 accepts (all but the last).
pub const MIN_PART: u64 = 5 << 20;
/// How long a presigned request stays valid.
const SIGN_FOR: Duration = Duration::from_secs(3600);

/// An S3 bucket (and key prefix) with its credentials.
pub struct S3Store {
    bucket: Bucket,
    creds: Credentials,
    prefix: String,
    agent: ureq::Agent,
    part_size: u64,
    label: String,
}

/// What an S3 target needs.
#[derive(Debug, Clone)]
pub struct S3Params {
    /// `https://s3.ap-northeast-1.amazonaws.com`, `http://127.0.0.1:3900`…
    pub endpoint: String,
    /// Region name the signature covers.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Key prefix (e.g. `smbvault/`), may be empty.
    pub prefix: String,
    /// Path-style URLs (`endpoint/bucket/key`) instead of virtual hosts.
    pub path_style: bool,
    /// Multipart part size in bytes.
    pub part_size: u64,
}

impl S3Store {
    /// A store for `p` with the access key `key_id` and `secret`.
    pub fn new(p: &S3Params, key_id: &str, secret: &str) -> Result<S3Store, String> {
        let endpoint: url::Url = p.endpoint.parse().map_err(|e| format!("endpoint {:?}: {e}", p.endpoint))?;
        let style = if p.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(endpoint, style, p.bucket.clone(), p.region.clone())
            .map_err(|e| format!("bucket {:?} at {}: {e}", p.bucket, p.endpoint))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        Ok(S3Store {
            bucket,
            creds: Credentials::new(key_id, secret),
            prefix: p.prefix.clone(),
            agent,
            part_size: p.part_size.max(MIN_PART),
            label: format!("s3://{}/{}", p.bucket, p.prefix),
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

type Resp = ureq::http::Response<ureq::Body>;

/// Parts an upload holds: number, size, ETag (unquoted).
type Parts = Vec<(u16, u64, String)>;

/// The status and, on failure, the S3 error body as a message.
fn check(what: &str, r: Result<Resp, ureq::Error>) -> Result<Resp, String> {
    let mut r = r.map_err(|e| format!("{what}: {e}"))?;
    if r.status().is_success() {
        return Ok(r);
    }
    let body = r.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
    let code = body.split("<Code>").nth(1).and_then(|s| s.split("</Code>").next()).unwrap_or("");
    Err(format!("{what}: HTTP {} {code}", r.status().as_u16()))
}

fn text(mut r: Resp, limit: u64) -> Result<String, String> {
    r.body_mut().with_config().limit(limit).read_to_string().map_err(|e| e.to_string())
}

fn etag(r: &Resp) -> Result<String, String> {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| "no ETag in the answer".to_string())
}

impl S3Store {
    fn put_part(&self, key: &str, id: &str, n: u16, data: &[u8], up: &Uploader) -> Result<String, String> {
        up.sending(data.len() as u64)?;
        let url = self.bucket.upload_part(Some(&self.creds), key, n, id).sign(SIGN_FOR);
        let r = check(&format!("upload part {n} of {key}"), self.agent.put(url.as_str()).send(data))?;
        etag(&r)
    }

    /// Parts an interrupted upload already holds: number → (size, ETag).
    fn parts(&self, key: &str, id: &str) -> Result<Option<Parts>, String> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let mut a = self.bucket.list_parts(Some(&self.creds), key, id);
            if let Some(m) = marker {
                a.set_part_number_marker(m);
            }
            let r = self.agent.get(a.sign(SIGN_FOR).as_str()).call().map_err(|e| format!("list parts: {e}"))?;
            if r.status().as_u16() == 404 {
                return Ok(None); // completed or aborted meanwhile
            }
            let r = check(&format!("list parts of {key}"), Ok(r))?;
            let page = ListParts::parse_response(&text(r, 16 << 20)?).map_err(|e| format!("list parts: {e}"))?;
            out.extend(page.parts.iter().map(|p| (p.number, p.size, p.etag.trim_matches('"').to_string())));
            match page.next_part_number_marker {
                Some(m) if !page.parts.is_empty() => marker = Some(m),
                _ => return Ok(Some(out)),
            }
        }
    }

    fn multipart(&self, key: &str, src: &File, start: u64, len: u64, up: &Uploader) -> Result<Sent, String> {
        let j = up.journal();
        let jkey = format!("{}\u{0}{key}", self.label);
        let mut have = Vec::new();
        let mut id = None;
        if let Some(old) = j.get(&jkey)
            && let Some(p) = self.parts(key, &old)?
        {
            have = p;
            id = Some(old);
        }
        let id = match id {
            Some(id) => id,
            None => {
                let url = self.bucket.create_multipart_upload(Some(&self.creds), key).sign(SIGN_FOR);
                let r =
                    check(&format!("create multipart upload of {key}"), self.agent.post(url.as_str()).send_empty())?;
                let body = text(r, 1 << 20)?;
                let id = CreateMultipartUpload::parse_response(&body)
                    .map_err(|e| format!("create multipart upload: {e}"))?
                    .upload_id()
                    .to_string();
                j.set(&jkey, Some(&id))?;
                id
            }
        };
        let parts = len.div_ceil(self.part_size).max(1);
        if parts > 10_000 {
            return Err(format!("{key}: {len} bytes need more than 10000 parts; raise part_size_mib"));
        }
        let mut etags = Vec::new();
        let mut sent = Sent::default();
        let mut buf = vec![0u8; self.part_size as usize];
        for i in 0..parts {
            let n = (i + 1) as u16;
            let off = i * self.part_size;
            let plen = (len - off).min(self.part_size) as usize;
            read_range(src, start + off, &mut buf[..plen])?;
            let data = &buf[..plen];
            let md5 = hex::encode(Md5::digest(data));
            if let Some((_, _, e)) = have.iter().find(|(pn, size, e)| *pn == n && *size == plen as u64 && *e == md5) {
                etags.push(format!("\"{e}\""));
                sent.resumed += plen as u64;
                continue;
            }
            etags.push(self.put_part(key, &id, n, data, up)?);
            sent.bytes += plen as u64;
        }
        let action =
            self.bucket.complete_multipart_upload(Some(&self.creds), key, &id, etags.iter().map(String::as_str));
        let url = action.sign(SIGN_FOR);
        let body = action.body();
        check(&format!("complete multipart upload of {key}"), self.agent.post(url.as_str()).send(body.as_bytes()))?;
        j.set(&jkey, None)?;
        Ok(sent)
    }
}

impl ObjectStore for S3Store {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, String> {
        let full = self.full(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut a = self.bucket.list_objects_v2(Some(&self.creds));
            a.with_prefix(full.as_str());
            if let Some(t) = &token {
                a.with_continuation_token(t.clone());
            }
            let r = check("list objects", self.agent.get(a.sign(SIGN_FOR).as_str()).call())?;
            let page = ListObjectsV2::parse_response(&text(r, 64 << 20)?).map_err(|e| format!("list objects: {e}"))?;
            for c in page.contents {
                if let Some(k) = c.key.strip_prefix(&self.prefix) {
                    out.push(ObjectInfo { key: k.to_string(), size: c.size.unwrap_or(0) });
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, String> {
        let url = self.bucket.get_object(Some(&self.creds), &self.full(key)).sign(SIGN_FOR);
        let mut r = check(&format!("get {key}"), self.agent.get(url.as_str()).call())?;
        r.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| format!("get {key}: {e}"))
    }

    fn get_to(&self, key: &str, out: &mut dyn Write) -> Result<u64, String> {
        let url = self.bucket.get_object(Some(&self.creds), &self.full(key)).sign(SIGN_FOR);
        let r = check(&format!("get {key}"), self.agent.get(url.as_str()).call())?;
        let mut rd = r.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 20];
        let mut n_total = 0;
        loop {
            let n = rd.read(&mut buf).map_err(|e| format!("get {key}: {e}"))?;
            if n == 0 {
                return Ok(n_total);
            }
            out.write_all(&buf[..n]).map_err(|e| format!("get {key}: {e}"))?;
            n_total += n as u64;
        }
    }

    fn put(&self, key: &str, data: &[u8], up: &Uploader) -> Result<(), String> {
        up.sending(data.len() as u64)?;
        let url = self.bucket.put_object(Some(&self.creds), &self.full(key)).sign(SIGN_FOR);
        check(&format!("put {key}"), self.agent.put(url.as_str()).send(data)).map(|_| ())
    }

    fn put_file(&self, key: &str, src: &File, start: u64, len: u64, up: &Uploader) -> Result<Sent, String> {
        let full = self.full(key);
        if len > self.part_size {
            return self.multipart(&full, src, start, len, up);
        }
        let mut buf = vec![0u8; len as usize];
        read_range(src, start, &mut buf)?;
        up.sending(len)?;
        let url = self.bucket.put_object(Some(&self.creds), &full).sign(SIGN_FOR);
        check(&format!("put {key}"), self.agent.put(url.as_str()).send(&buf[..]))?;
        Ok(Sent { bytes: len, resumed: 0 })
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        let url = self.bucket.delete_object(Some(&self.creds), &self.full(key)).sign(SIGN_FOR);
        let r = self.agent.delete(url.as_str()).call().map_err(|e| format!("delete {key}: {e}"))?;
        if r.status().is_success() || r.status().as_u16() == 404 {
            return Ok(());
        }
        check(&format!("delete {key}"), Ok(r)).map(|_| ())
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}
