//! Asking before irreversible operator actions (contract end, user
//! deletion, share data deletion, restore, log purge): at a terminal the
//! operator types the name of what is destroyed; scripts pass `--yes`.
//! Without either the command refuses with [`NOT_CONFIRMED`] and changes
//! nothing. `--dry-run` says what would happen and changes nothing.

use std::io::{BufRead, IsTerminal, Write};

use super::CliError;

/// Exit code of a command refused for want of confirmation.
pub const NOT_CONFIRMED: u8 = 4;

/// `--yes` and `--dry-run`, flattened into each destructive command.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ConfirmArgs {
    /// Do it without asking (scripts). At a terminal you are asked to type
    /// the name of what is destroyed instead.
    #[arg(long)]
    pub yes: bool,
    /// Only say what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl ConfirmArgs {
    /// Asks the operator to confirm `what` (one sentence, e.g. "delete user
    /// ACME\alice and her settings") by typing `word`. Ok when `--yes` was
    /// given or the operator typed `word` at the terminal.
    pub fn confirm(&self, what: &str, word: &str) -> Result<(), CliError> {
        if self.yes {
            return Ok(());
        }
        let refuse = |why: &str| CliError {
            message: format!(
                "not confirmed, nothing was changed: {what}. {why} To go ahead, run it at a terminal and \
                 type {word:?} when asked, or pass --yes (scripts); --dry-run shows what would happen"
            ),
            code: NOT_CONFIRMED,
        };
        if !std::io::stdin().is_terminal() {
            return Err(refuse("This cannot be undone and standard input is not a terminal."));
        }
        let typed = ask(&format!("This will {what}. It cannot be undone.\nType {word} to confirm: "))
            .map_err(|e| refuse(&format!("Cannot ask at the terminal ({e}).")))?;
        if typed.trim() == word { Ok(()) } else { Err(refuse(&format!("You typed {:?}, not {word:?}.", typed.trim()))) }
    }
}

/// Prints `prompt` on the terminal and reads one line (echoed: nothing secret).
fn ask(prompt: &str) -> std::io::Result<String> {
    let mut tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line)?;
    Ok(line)
}
