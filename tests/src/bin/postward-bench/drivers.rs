//! The two [`Driver`]s: a policy connection (a socket, or a child process speaking on its
//! stdin/stdout as Postfix spawn(8) runs pypolicyd-spf) and a Dovecot auth connection. They
//! pair a connection with the connection's request generator and classify each answer; the
//! protocol clients themselves live in the `postward_tests` library.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use postward_tests::auth_client::{AuthClient, AuthError, AuthOutcome, Mech};
use postward_tests::client::{ClientError, PolicyClient};
use tokio::process::{Child, Command};

use crate::report::ProcMemory;
use crate::runner::{Answer, Driver, Failure};
use crate::workloads::{AuthWorkload, PolicyWorkload};

/// How long a spawned child may take to exit once killed.
const CHILD_EXIT_WAIT: Duration = Duration::from_secs(5);

/// Where policy connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unix:/path` or `inet:host:port`.
    Socket(String),
    /// A command and its arguments, started once per connection.
    Spawn(Vec<String>),
}

/// One policy connection's driver.
pub struct PolicyDriver {
    target: Arc<Target>,
    workload: PolicyWorkload,
}

impl PolicyDriver {
    pub fn new(target: Arc<Target>, workload: PolicyWorkload) -> PolicyDriver {
        PolicyDriver { target, workload }
    }
}

/// An open policy connection, and the child behind it in spawn mode.
pub struct PolicyConn {
    client: PolicyClient,
    child: Option<Child>,
}

impl Driver for PolicyDriver {
    type Conn = PolicyConn;

    async fn connect(&mut self) -> Result<PolicyConn, Failure> {
        match &*self.target {
            Target::Socket(addr) => {
                let client =
                    PolicyClient::connect(addr).await.map_err(|e| Failure::new("connect", format!("{addr}: {e}")))?;
                Ok(PolicyConn { client, child: None })
            }
            Target::Spawn(argv) => spawn(argv),
        }
    }

    async fn request(&mut self, conn: &mut PolicyConn) -> Result<Answer, Failure> {
        let (req, tag) = self.workload.next();
        let attrs = req.attrs();
        let action = conn.client.request(&attrs).await.map_err(policy_failure)?;
        Ok(Answer { label: action_label(&action), tag })
    }

    async fn close(&mut self, conn: PolicyConn) {
        // Closing stdin first lets a well-behaved child exit on its own; then it is killed.
        drop(conn.client);
        if let Some(mut child) = conn.child {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(CHILD_EXIT_WAIT, child.wait()).await;
        }
    }

    fn memory(&self, conn: &PolicyConn) -> Option<ProcMemory> {
        conn.child.as_ref().and_then(Child::id).and_then(|pid| ProcMemory::read(pid).ok())
    }
}

/// Starts one policy child with its stdin and stdout as the policy stream (spawn(8)).
fn spawn(argv: &[String]) -> Result<PolicyConn, Failure> {
    let (program, args) = argv.split_first().ok_or_else(|| Failure::new("spawn", "empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::new("spawn", format!("{program}: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Failure::new("spawn", format!("{program}: no stdin/stdout pipe")));
    };
    let client = PolicyClient::new(Box::new(tokio::io::join(stdout, stdin)));
    Ok(PolicyConn { client, child: Some(child) })
}

/// The answer class of a policy action: its first word, upper-cased (`DUNNO`,
/// `DEFER_IF_PERMIT`, `PREPEND`, `550`, …).
pub fn action_label(action: &str) -> String {
    match action.split_whitespace().next() {
        Some(word) => word.to_ascii_uppercase(),
        None => "(empty)".to_owned(),
    }
}

fn policy_failure(e: ClientError) -> Failure {
    let kind = match e {
        ClientError::Closed => "closed",
        ClientError::Malformed(_) => "malformed",
        ClientError::Io(_) => "io",
    };
    Failure::new(kind, e)
}

/// One auth connection's driver.
pub struct AuthDriver {
    target: Arc<str>,
    workload: AuthWorkload,
    mech: Mech,
    /// `CPID` of this connection (as each smtpd process sends its own pid).
    cpid: u32,
}

impl AuthDriver {
    pub fn new(target: Arc<str>, workload: AuthWorkload, mech: Mech, index: usize) -> AuthDriver {
        let cpid = std::process::id().wrapping_add(u32::try_from(index).unwrap_or(0)).max(1);
        AuthDriver { target, workload, mech, cpid }
    }
}

impl Driver for AuthDriver {
    type Conn = AuthClient;

    async fn connect(&mut self) -> Result<AuthClient, Failure> {
        let mut client = AuthClient::connect(&self.target)
            .await
            .map_err(|e| Failure::new("connect", format!("{}: {e}", self.target)))?;
        let handshake = client.handshake(self.cpid).await.map_err(|e| Failure::new("handshake", e))?;
        if !handshake.offers(self.mech) {
            return Err(Failure::new(
                "handshake",
                format!("server does not offer {} (offers {})", self.mech.name(), handshake.mechs.join(" ")),
            ));
        }
        Ok(client)
    }

    async fn request(&mut self, conn: &mut AuthClient) -> Result<Answer, Failure> {
        let creds = self.workload.next();
        conn.set_rip(&creds.rip);
        let outcome = conn.authenticate(self.mech, &creds.user, &creds.password).await.map_err(auth_failure)?;
        let label = match (&outcome, creds.right) {
            (AuthOutcome::Ok { .. }, true) => "OK",
            (AuthOutcome::Fail { .. }, false) => "FAIL",
            // The two answers that must never happen; kept apart so they stand out.
            (AuthOutcome::Ok { .. }, false) => "OK (wrong password)",
            (AuthOutcome::Fail { .. }, true) => "FAIL (right password)",
        };
        Ok(Answer { label: label.to_owned(), tag: if creds.right { "right" } else { "wrong" } })
    }

    async fn close(&mut self, conn: AuthClient) {
        drop(conn);
    }
}

fn auth_failure(e: AuthError) -> Failure {
    let kind = match e {
        AuthError::Closed => "closed",
        AuthError::LineTooLong { .. } | AuthError::Protocol(_) => "protocol",
        AuthError::Connect(_) => "connect",
        AuthError::Io(_) => "io",
    };
    Failure::new(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let cases = [
            ("DUNNO", "DUNNO"),
            ("dunno", "DUNNO"),
            ("defer_if_permit Greylisted, retry in 300 s", "DEFER_IF_PERMIT"),
            ("PREPEND X-Greylist: delayed 301 seconds", "PREPEND"),
            ("550 5.7.23 SPF fail", "550"),
            ("", "(empty)"),
        ];
        for (action, label) in cases {
            assert_eq!(action_label(action), label, "{action:?}");
        }
    }
}
