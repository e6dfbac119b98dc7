//! The Dovecot auth workload: users from a numbered range, most with their right password
//! and a share with a wrong one, each user always connecting from the same `rip`.

use postward_tests::auth_client::Mech;

use crate::rng::Rng;

/// Options of `postward-bench auth`.
#[derive(Debug, Clone)]
pub struct AuthSpec {
    /// Users are numbered `0..users`.
    pub users: u64,
    /// `{}` becomes the user's number.
    pub user_format: String,
    /// `{}` becomes the user's number.
    pub password_format: String,
    /// Share of attempts with a wrong password, `0.0..=1.0`.
    pub wrong_fraction: f64,
    pub mech: Mech,
}

impl Default for AuthSpec {
    fn default() -> Self {
        AuthSpec {
            users: 1000,
            user_format: "user{}".into(),
            password_format: "pass{}".into(),
            wrong_fraction: 0.1,
            mech: Mech::Plain,
        }
    }
}

/// One authentication attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// `rip=`: `127.0.0.<1 + n % 254>` for user `n`.
    pub rip: String,
    /// Whether `password` is the user's right password.
    pub right: bool,
}

/// One connection's generator of authentication attempts.
#[derive(Debug)]
pub struct AuthWorkload {
    spec: AuthSpec,
    rng: Rng,
    creds: Credentials,
}

impl AuthWorkload {
    pub fn new(spec: &AuthSpec, seed: u64, index: usize) -> AuthWorkload {
        let rng = Rng::new(seed, u64::try_from(index).unwrap_or(u64::MAX));
        AuthWorkload { spec: spec.clone(), rng, creds: Credentials::default() }
    }

    pub fn next(&mut self) -> &Credentials {
        let n = self.rng.below(self.spec.users);
        let number = n.to_string();
        let c = &mut self.creds;
        c.user = self.spec.user_format.replace("{}", &number);
        c.password = self.spec.password_format.replace("{}", &number);
        c.right = !self.rng.chance(self.spec.wrong_fraction);
        if !c.right {
            c.password.push_str(".wrong");
        }
        c.rip = format!("127.0.0.{}", 1 + n % 254);
        &self.creds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_passwords_and_wrong_share() {
        let spec = AuthSpec { users: 50, wrong_fraction: 0.1, ..AuthSpec::default() };
        let mut w = AuthWorkload::new(&spec, 1, 0);
        let mut wrong = 0;
        for _ in 0..20_000 {
            let c = w.next();
            let n: u64 = c.user.strip_prefix("user").unwrap().parse().unwrap();
            assert!(n < 50);
            if c.right {
                assert_eq!(c.password, format!("pass{n}"));
            } else {
                assert_ne!(c.password, format!("pass{n}"));
                wrong += 1;
            }
            assert_eq!(c.rip, format!("127.0.0.{}", 1 + n % 254));
        }
        assert!((1_700..2_300).contains(&wrong), "{wrong}");
    }
}
