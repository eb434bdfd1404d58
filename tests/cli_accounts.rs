//! The administration CLI, run as the real binary against a temp data dir.
//!
//! Organizations are created through the library (the CLI's storage
//! provisioner is connected by the server build); everything else goes
//! through `smbvault`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use smbvault::accounts::{Accounts, HashCost, Role, TestProvisioner, password};
use smbvault::config::AccountsConfig;
use smbvault::keys::{MasterKey, Unlock};

const BOSS_PW: &str = "Chief-Passw0rd-1";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    /// `init`, then ACME (admin boss) and BETA (member bob) via the library.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("smbvault.toml");
        let data = dir.path().join("data");
        std::fs::write(&config, format!("[server]\ndata_dir = {:?}\n", data.to_str().unwrap())).unwrap();
        let env = Self { dir, config };
        env.ok(&["init"], None);
        let acc = env.accounts();
        let prov = TestProvisioner::new();
        let acme = acc.create_org("ACME", &prov).unwrap();
        let beta = acc.create_org("BETA", &prov).unwrap();
        acc.add_user(acme.id, "boss", Role::OrgAdmin, BOSS_PW).unwrap();
        acc.add_user(beta.id, "bob", Role::Member, "Builder-Passw0rd-22").unwrap();
        env
    }

    fn accounts(&self) -> Accounts {
        let data = self.dir.path().join("data");
        let unlock = Unlock::KeyFile(self.dir.path().join("keys/master.key"));
        let mk = MasterKey::open(&data.join("keys/master.slots"), &unlock).unwrap();
        Accounts::open(&data.join("accounts.db"), &mk, &AccountsConfig::default())
            .unwrap()
            .with_hash_cost(HashCost::InsecureFast)
    }

    fn run(&self, args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smbvault"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("SMBVAULT_NEW_PASSWORD").env_remove("SMBVAULT_ADMIN_PASSWORD");
        cmd.envs(envs.iter().copied());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin, &[]);
        assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    fn json(&self, args: &[&str], envs: &[(&str, &str)]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.run(&a, None, envs);
        assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Runs as `--as ACME\boss`.
    fn boss(&self, args: &[&str]) -> Output {
        let mut a = vec!["--as", "ACME\\boss"];
        a.extend_from_slice(args);
        self.run(&a, None, &[("SMBVAULT_ADMIN_PASSWORD", BOSS_PW)])
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|u| u["qualified"].as_str().unwrap().to_string()).collect()
}

#[test]
fn user_add_list_disable_passwd() {
    let env = Env::new();
    env.ok(&["user", "add", "--org", "ACME", "alice", "--password-stdin"], Some("Wonder-Start-Pw1\n"));
    let o = env.run(&["user", "add", "ACME\\carol"], None, &[("SMBVAULT_NEW_PASSWORD", "Singer-Start-Pw2")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let made = env.json(&["user", "add", "dave@ACME", "--generate"], &[]);
    let generated = made["generated_password"].as_str().unwrap().to_string();
    assert_eq!(made["qualified"], "ACME\\dave");

    // The stored NT hashes are those of the passwords given.
    let acc = env.accounts();
    let nt = |u: &str| *acc.resolve_logon("ACME", u).unwrap().unwrap().nt_hash;
    assert_eq!(nt("alice"), *password::nt_hash("Wonder-Start-Pw1"));
    assert_eq!(nt("carol"), *password::nt_hash("Singer-Start-Pw2"));
    assert_eq!(nt("dave"), *password::nt_hash(&generated));

    // Policy and missing-password errors explain the fix.
    let o = env.run(&["user", "add", "ACME\\weak", "--password-stdin"], Some("weak\n"), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("password rejected") && stderr(&o).contains("--generate"), "{}", stderr(&o));
    let o = env.run(&["user", "add", "ACME\\nopw"], None, &[]);
    assert!(!o.status.success() && stderr(&o).contains("SMBVAULT_NEW_PASSWORD"), "{}", stderr(&o));
    let o = env.run(&["user", "add", "nobody"], None, &[("SMBVAULT_NEW_PASSWORD", "Singer-Start-Pw2")]);
    assert!(stderr(&o).contains("--org"), "two orgs: must say which: {}", stderr(&o));

    // list --json: all users, never a secret.
    let list = env.json(&["user", "list"], &[]);
    let mut got = names(&list);
    got.sort();
    assert_eq!(got, ["ACME\\alice", "ACME\\boss", "ACME\\carol", "ACME\\dave", "BETA\\bob"]);
    let text = list.to_string();
    for secret in ["Wonder-Start-Pw1", "argon2", &hex::encode(nt("alice")), generated.as_str()] {
        assert!(!text.contains(secret), "list leaks {secret}");
    }
    assert_eq!(names(&env.json(&["user", "list", "--org", "BETA"], &[])), ["BETA\\bob"]);

    // disable / enable.
    env.ok(&["user", "disable", "ACME\\alice"], None);
    let list = env.json(&["user", "list", "--org", "acme"], &[]);
    let alice = list.as_array().unwrap().iter().find(|u| u["name"] == "alice").unwrap();
    assert_eq!(alice["enabled"], false);
    assert!(!acc.resolve_logon("ACME", "alice").unwrap().unwrap().enabled);
    env.ok(&["user", "enable", "alice", "--org", "ACME"], None);
    assert!(acc.resolve_logon("ACME", "alice").unwrap().unwrap().enabled);

    // passwd.
    let rev = acc.revision().unwrap();
    env.ok(&["user", "passwd", "ACME\\alice", "--password-stdin"], Some("Wonder-Second-Pw3\r\n"));
    assert_eq!(nt("alice"), *password::nt_hash("Wonder-Second-Pw3"));
    assert!(acc.revision().unwrap() > rev, "the server sees CLI changes");
    let o = env.run(&["user", "passwd", "ACME\\ghost", "--generate"], None, &[]);
    assert!(stderr(&o).contains("does not exist") && stderr(&o).contains("user list"), "{}", stderr(&o));
}

#[test]
fn org_admin_is_confined_to_own_org() {
    let env = Env::new();
    env.ok(&["user", "add", "ACME\\alice", "--password-stdin"], Some("Wonder-Start-Pw1\n"));

    // Sees only ACME.
    let o = env.boss(&["--json", "user", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(names(&v), ["ACME\\alice", "ACME\\boss"]);
    let o = env.boss(&["--json", "org", "list"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "ACME");

    // Refused elsewhere, exit code 3, with a clear message.
    for args in [
        &["user", "list", "--org", "BETA"][..],
        &["user", "add", "BETA\\eve", "--generate"],
        &["user", "disable", "bob@BETA"],
        &["user", "list", "--org", "NOSUCH"],
        &["org", "suspend", "BETA"],
        &["org", "set-quota", "ACME", "1T"],
    ] {
        let o = env.boss(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("permission denied"), "{args:?}: {e}");
        assert!(e.contains("ACME only") || e.contains("only the server operator"), "{args:?}: {e}");
    }
    let o = env.boss(&["user", "disable", "boss"]);
    assert_eq!(o.status.code(), Some(3), "no self-lockout: {}", stderr(&o));

    // Works inside ACME.
    let o = env.boss(&["user", "add", "dave", "--generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ACME\\dave"));
    assert!(env.accounts().resolve_logon("ACME", "dave").unwrap().is_some());

    // Wrong password, members, missing password.
    let mut a = vec!["--as", "ACME\\boss", "user", "list"];
    let o = env.run(&a, None, &[("SMBVAULT_ADMIN_PASSWORD", "Not-The-Pw-9")]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("wrong user name or password"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Not-The-Pw-9"));
    a[1] = "ACME\\alice";
    let o = env.run(&a, None, &[("SMBVAULT_ADMIN_PASSWORD", "Wonder-Start-Pw1")]);
    assert!(stderr(&o).contains("not an administrator"), "{}", stderr(&o));
    let o = env.run(&["--as", "ACME\\boss", "user", "list"], None, &[]);
    assert!(!o.status.success() && stderr(&o).contains("SMBVAULT_ADMIN_PASSWORD"), "{}", stderr(&o));
}

#[test]
fn uninitialized_data_dir_says_how_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("[server]\ndata_dir = {:?}\n", dir.path().join("d").to_str().unwrap())).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_smbvault"))
        .arg("--config")
        .arg(&config)
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("smbvault init"), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_smbvault"))
        .args(["--config", "/nonexistent/smbvault.toml", "--json", "user", "list"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert!(v["error"].as_str().unwrap().contains("--config"));
}
