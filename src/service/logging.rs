//! The server's own diagnostics on stderr (the audit log is elsewhere):
//! JST timestamps like every other time we show, colour only when stderr is
//! a terminal (never escape codes in files or the journal), text or one
//! JSON object per line, and a filter SIGHUP can change.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogFormat;

/// Changes the filter of the installed subscriber (SIGHUP).
#[derive(Clone)]
pub struct LogHandle(Option<reload::Handle<EnvFilter, Registry>>);

impl LogHandle {
    /// A handle that changes nothing (no subscriber installed by us).
    pub fn none() -> Self {
        Self(None)
    }

    /// Replaces the filter; the error names what is wrong with `level`.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let f = EnvFilter::try_new(level).map_err(|e| format!("log.level {level:?}: {e}"))?;
        match &self.0 {
            Some(h) => h.reload(f).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, else `level`.
/// Returns a handle for reloading the level.
pub fn init(format: LogFormat, level: &str) -> LogHandle {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let filter = env
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal();
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_timer(Jst);
    let result = match format {
        LogFormat::Text => tracing_subscriber::registry().with(filter).with(layer).try_init(),
        LogFormat::Json => tracing_subscriber::registry().with(filter).with(layer.event_format(JsonLines)).try_init(),
    };
    match result {
        Ok(()) => LogHandle(Some(handle)),
        Err(_) => LogHandle(None),
    }
}

/// `2026-12-06T11:49:39.123456+09:00`.
pub fn jst_now() -> String {
    crate::types::jst::at(std::time::SystemTime::now()).format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

/// Timestamps in JST with the offset written out.
struct Jst;

impl FormatTime for Jst {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_str(&jst_now())
    }
}

/// `{"timestamp":"…+09:00","level":"INFO","target":"smbvault::net","message":"…",…fields}`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &tracing::Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut obj = Map::new();
        obj.insert("timestamp".into(), Value::String(jst_now()));
        obj.insert("level".into(), Value::String(meta.level().to_string()));
        obj.insert("target".into(), Value::String(meta.target().to_string()));
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|s| Value::String(s.name().to_string())).collect();
            if !spans.is_empty() {
                obj.insert("spans".into(), Value::Array(spans));
            }
        }
        for (k, v) in fields.0 {
            // Fields never overwrite the envelope.
            obj.entry(k).or_insert(v);
        }
        writeln!(w, "{}", Value::Object(obj))
    }
}

/// Collects an event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.insert(f.name().to_string(), Value::String(format!("{v:?}")));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().to_string(), Value::String(v.to_string()));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().to_string(), Value::from(v));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().to_string(), Value::from(v));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().to_string(), Value::from(v));
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.insert(f.name().to_string(), Value::from(v));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.0.insert(f.name().to_string(), Value::String(v.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_jst() {
        let t = jst_now();
        assert!(t.ends_with("+09:00"), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok(), "{t}");
    }
}
