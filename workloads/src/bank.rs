//! The `bank` workload: transfers between accounts and reads of every balance (checked by the
//! bank invariant checker: the total is conserved, no balance goes negative, reads are
//! snapshots).

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use targets::protocol::Balances;

use crate::generator::{from_fn, mix, Generator, Mix, OpTemplate};

/// A transfer's input, as its history `value` holds it: `{"from":"a1","to":"a2","amount":5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub amount: i64,
}

impl Transfer {
    /// The `transfer` operation.
    pub fn op(&self) -> OpTemplate {
        OpTemplate::new("transfer", json!(self))
    }

    /// Reads a transfer back from an operation's value.
    pub fn parse(value: &serde_json::Value) -> Result<Transfer, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("not a transfer {value}: {e}"))
    }

    /// Applies it to `balances`, refusing what the target would refuse (an unknown account, a
    /// non-positive amount, a negative balance), so a refused transfer changes nothing.
    pub fn apply(&self, balances: &mut Balances) -> Result<(), String> {
        if self.from == self.to || self.amount <= 0 {
            return Err(format!(
                "a transfer needs two accounts and a positive amount: {self:?}"
            ));
        }
        for account in [&self.from, &self.to] {
            if !balances.contains_key(account) {
                return Err(format!("no account {account:?}"));
            }
        }
        let from = balances[&self.from];
        if from < self.amount {
            return Err(format!(
                "insufficient funds in {}: balance {from}, transfer {}",
                self.from, self.amount
            ));
        }
        let to = balances[&self.to]
            .checked_add(self.amount)
            .ok_or_else(|| format!("balance of {} would overflow", self.to))?;
        balances.insert(self.from.clone(), from - self.amount);
        balances.insert(self.to.clone(), to);
        Ok(())
    }
}

/// `{"f":"read","value":null}`: every balance at once.
pub fn bank_read() -> OpTemplate {
    OpTemplate::new("read", json!(null))
}

/// Every account at `initial_balance`: the bank before the test.
pub fn initial_balances(accounts: &[String], initial_balance: i64) -> Balances {
    accounts
        .iter()
        .map(|a| (a.clone(), initial_balance))
        .collect()
}

/// An infinite source of transfers between two distinct random accounts, amounts drawn from
/// `1..=max_transfer`.
///
/// # Panics
/// With fewer than two accounts, or `max_transfer` below 1.
pub fn transfers(accounts: Vec<String>, max_transfer: i64) -> impl Generator {
    assert!(accounts.len() >= 2, "a transfer needs two accounts");
    assert!(max_transfer >= 1, "max_transfer must be at least 1");
    from_fn(move |rng, _| {
        let n = accounts.len();
        let from = rng.gen_range(0..n);
        // Drawn from the other n - 1 accounts, so never equal to `from`.
        let mut to = rng.gen_range(0..n - 1);
        if to >= from {
            to += 1;
        }
        Transfer {
            from: accounts[from].clone(),
            to: accounts[to].clone(),
            amount: rng.gen_range(1..=max_transfer),
        }
        .op()
    })
}

/// Transfers and reads, three to one: reads during the run are what show a broken snapshot.
pub fn bank_ops(accounts: Vec<String>, max_transfer: i64) -> Mix {
    mix(vec![
        (3, transfers(accounts, max_transfer).boxed()),
        (1, from_fn(|_, _| bank_read()).boxed()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank() -> Balances {
        initial_balances(&["a".into(), "b".into()], 10)
    }

    fn t(from: &str, to: &str, amount: i64) -> Transfer {
        Transfer {
            from: from.into(),
            to: to.into(),
            amount,
        }
    }

    #[test]
    fn transfers_move_money_or_change_nothing() {
        let mut b = bank();
        t("a", "b", 4).apply(&mut b).unwrap();
        assert_eq!(b, [("a".into(), 6), ("b".into(), 14)].into());
        for bad in [
            t("a", "b", 7),
            t("a", "a", 1),
            t("a", "b", 0),
            t("a", "z", 1),
        ] {
            assert!(bad.apply(&mut b).is_err(), "{bad:?}");
            assert_eq!(b, [("a".into(), 6), ("b".into(), 14)].into());
        }
    }

    #[test]
    fn the_wire_shape_round_trips() {
        let op = t("a1", "a2", 5).op();
        assert_eq!(op.f, "transfer");
        assert_eq!(op.value, json!({"from": "a1", "to": "a2", "amount": 5}));
        assert_eq!(Transfer::parse(&op.value).unwrap(), t("a1", "a2", 5));
        assert!(Transfer::parse(&json!({"from": "a1"})).is_err());
    }
}
