//! The bank invariant (DESIGN.md §4): transfers move money between accounts but never create or
//! destroy it. Every ok read must show exactly the configured accounts, integer balances, the
//! conserved total and, unless allowed, no negative balance. Reads are meant to be snapshots, so a
//! read that mixes states from before and after a transfer shows up as a wrong total.

use crate::{Operation, Outcome};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Lists in results are cut here (counts are kept) so results.json stays readable.
pub(crate) const MAX_LISTED: usize = 100;

/// What the bank workload was set up with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankOptions {
    /// Account names; duplicates count once.
    pub accounts: Vec<String>,
    /// Each account's opening balance; the expected total is `accounts × initial_balance`.
    pub initial_balance: i64,
    /// Some banks allow overdrafts; then a negative balance is not a finding.
    #[serde(default)]
    pub allow_negative: bool,
}

impl BankOptions {
    /// Accounts named `a0`, `a1`, ... as the bank workload names them.
    pub fn numbered(count: usize, initial_balance: i64) -> BankOptions {
        BankOptions {
            accounts: (0..count).map(|i| format!("a{i}")).collect(),
            initial_balance,
            allow_negative: false,
        }
    }
}

/// How many operations of one function ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
}

impl OutcomeCounts {
    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.ok + self.fail + self.info
    }
}

/// One thing wrong with a read. A read may have several, in this order.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BankError {
    /// The value is not a map from account to balance; `found` is its JSON type.
    NotAMap {
        found: String,
    },
    MissingAccounts {
        accounts: Vec<String>,
    },
    UnexpectedAccounts {
        accounts: Vec<String>,
    },
    /// Balances that are not integers in the signed 64-bit range, with what was there instead.
    NotAnInteger {
        balances: BTreeMap<String, Value>,
    },
    /// The balances shown do not add up to the conserved total.
    WrongTotal {
        #[serde(serialize_with = "ser_i128")]
        expected: i128,
        #[serde(serialize_with = "ser_i128")]
        found: i128,
    },
    NegativeBalance {
        balances: BTreeMap<String, i64>,
    },
}

impl BankError {
    /// A stable name for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            BankError::NotAMap { .. } => "not-a-map",
            BankError::MissingAccounts { .. } => "missing-accounts",
            BankError::UnexpectedAccounts { .. } => "unexpected-accounts",
            BankError::NotAnInteger { .. } => "not-an-integer",
            BankError::WrongTotal { .. } => "wrong-total",
            BankError::NegativeBalance { .. } => "negative-balance",
        }
    }

    fn describe(&self) -> String {
        let (what, names): (&str, Vec<String>) = match self {
            BankError::NotAMap { found } => return format!("saw {found}, not a map of balances"),
            BankError::WrongTotal { expected, found } => {
                return format!("saw total {found}, expected {expected}")
            }
            BankError::MissingAccounts { accounts } => ("did not show", accounts.clone()),
            BankError::UnexpectedAccounts { accounts } => ("showed unknown", accounts.clone()),
            BankError::NotAnInteger { balances } => {
                let shown = balances
                    .iter()
                    .map(|(a, v)| format!("{a} = {}", short_json(v)));
                ("saw non-integer balance", shown.collect())
            }
            BankError::NegativeBalance { balances } => {
                let shown = balances.iter().map(|(a, b)| format!("{a} = {b}"));
                ("saw negative balance", shown.collect())
            }
        };
        format!("{what} {}", name_list(names))
    }
}

/// An ok read that broke the invariant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BadRead {
    pub op: usize,
    pub process: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// When the read completed (ns since test start), else when it was invoked, if known.
    pub time: Option<u64>,
    pub errors: Vec<BankError>,
    /// The value the read returned, as recorded.
    pub balances: Value,
    #[serde(serialize_with = "ser_i128")]
    pub expected_total: i128,
    /// Sum of the balances shown; `None` when some balance is not an integer.
    #[serde(serialize_with = "ser_opt_i128")]
    pub found_total: Option<i128>,
}

impl BadRead {
    /// How far off the total was: ranks the worst read.
    fn deviation(&self) -> u128 {
        self.found_total
            .map_or(0, |found| found.abs_diff(self.expected_total))
    }

    fn describe(&self) -> String {
        let errors: Vec<String> = self.errors.iter().map(BankError::describe).collect();
        format!("op {}{} {}", self.op, at(self.time), errors.join(" and "))
    }
}

/// A total seen by reads, with how many reads saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TotalSeen {
    #[serde(serialize_with = "ser_i128")]
    pub total: i128,
    pub reads: usize,
}

/// The bank checker's verdict and evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BankResult {
    /// False iff some ok read broke the invariant. True with `checked_reads == 0` means
    /// nothing could be checked: callers may treat that as unknown.
    pub valid: bool,
    pub summary: String,
    /// Ok reads checked; failed and info reads say nothing about the state and are skipped.
    pub checked_reads: usize,
    pub reads: OutcomeCounts,
    pub transfers: OutcomeCounts,
    /// Operations that are neither reads nor transfers (ignored).
    pub other_ops: usize,
    pub accounts: usize,
    #[serde(serialize_with = "ser_i128")]
    pub expected_total: i128,
    pub bad_read_count: usize,
    /// The first bad reads in completion order, at most [`MAX_LISTED`].
    pub bad_reads: Vec<BadRead>,
    /// Bad reads per error kind (a read with two kinds counts in both).
    pub error_counts: BTreeMap<String, usize>,
    pub first_bad: Option<BadRead>,
    /// The bad read furthest from the expected total (then with the most kinds of error).
    pub worst_bad: Option<BadRead>,
    /// Every distinct total seen by ok reads whose balances were all integers, ascending.
    pub totals: Vec<TotalSeen>,
}

/// Checks every ok read of a bank history against the options' accounts and total.
pub fn check_bank(ops: &[Operation], options: &BankOptions) -> BankResult {
    let accounts: BTreeSet<&str> = options.accounts.iter().map(String::as_str).collect();
    let expected_total = accounts.len() as i128 * i128::from(options.initial_balance);

    let mut reads = OutcomeCounts::default();
    let mut transfers = OutcomeCounts::default();
    let mut other_ops = 0;
    let mut ok_reads: Vec<&Operation> = Vec::new();
    for op in ops {
        match op.f.as_str() {
            "read" => {
                reads.count(op.outcome);
                if op.outcome == Outcome::Ok {
                    ok_reads.push(op);
                }
            }
            "transfer" => transfers.count(op.outcome),
            _ => other_ops += 1,
        }
    }
    // Completion order: "first" is the first time an anomaly became visible.
    ok_reads.sort_by_key(|op| (op.ret.unwrap_or(op.call), op.id));

    let mut totals: BTreeMap<i128, usize> = BTreeMap::new();
    let mut error_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut bad: Vec<BadRead> = Vec::new();
    for op in &ok_reads {
        let (errors, found_total) = check_read(
            &op.output,
            &accounts,
            expected_total,
            options.allow_negative,
        );
        if let Some(total) = found_total {
            *totals.entry(total).or_default() += 1;
        }
        for error in &errors {
            *error_counts.entry(error.kind().to_string()).or_default() += 1;
        }
        if !errors.is_empty() {
            bad.push(BadRead {
                op: op.id,
                process: op.process,
                node: op.node.clone(),
                time: op.return_time.or(op.call_time),
                errors,
                balances: op.output.clone(),
                expected_total,
                found_total,
            });
        }
    }

    let first_bad = bad.first().cloned();
    // `max_by_key` keeps the last of equals; reversing keeps the earliest.
    let worst_bad = bad
        .iter()
        .rev()
        .max_by_key(|r| (r.deviation(), r.errors.len()))
        .cloned();
    let bad_read_count = bad.len();
    bad.truncate(MAX_LISTED);

    let totals = totals
        .into_iter()
        .map(|(total, reads)| TotalSeen { total, reads });
    let mut result = BankResult {
        valid: bad_read_count == 0,
        summary: String::new(),
        checked_reads: ok_reads.len(),
        reads,
        transfers,
        other_ops,
        accounts: accounts.len(),
        expected_total,
        bad_read_count,
        bad_reads: bad,
        error_counts,
        first_bad,
        worst_bad,
        totals: totals.collect(),
    };
    result.summary = summarize(&result, options.allow_negative);
    result
}

/// The errors of one read's value, in [`BankError`] order, and its total when computable.
fn check_read(
    value: &Value,
    accounts: &BTreeSet<&str>,
    expected_total: i128,
    allow_negative: bool,
) -> (Vec<BankError>, Option<i128>) {
    let Value::Object(map) = value else {
        let found = json_type(value).to_string();
        return (vec![BankError::NotAMap { found }], None);
    };
    let mut errors = Vec::new();
    let missing = accounts.iter().filter(|a| !map.contains_key(**a));
    let missing: Vec<String> = missing.map(|a| a.to_string()).collect();
    if !missing.is_empty() {
        errors.push(BankError::MissingAccounts { accounts: missing });
    }
    let unexpected = map.keys().filter(|k| !accounts.contains(k.as_str()));
    let unexpected: BTreeSet<String> = unexpected.cloned().collect();
    if !unexpected.is_empty() {
        let accounts = unexpected.into_iter().collect();
        errors.push(BankError::UnexpectedAccounts { accounts });
    }

    let mut non_integer = BTreeMap::new();
    let mut negative = BTreeMap::new();
    let mut total: i128 = 0;
    for (account, balance) in map {
        match balance.as_i64() {
            Some(b) => {
                // Each term fits in i64, so no realistic map can overflow an i128 sum.
                total = total.saturating_add(i128::from(b));
                if b < 0 {
                    negative.insert(account.clone(), b);
                }
            }
            None => {
                non_integer.insert(account.clone(), balance.clone());
            }
        }
    }
    let found_total = non_integer.is_empty().then_some(total);
    if !non_integer.is_empty() {
        let balances = non_integer;
        errors.push(BankError::NotAnInteger { balances });
    }
    if let Some(found) = found_total.filter(|t| *t != expected_total) {
        let expected = expected_total;
        errors.push(BankError::WrongTotal { expected, found });
    }
    if !negative.is_empty() && !allow_negative {
        errors.push(BankError::NegativeBalance { balances: negative });
    }
    (errors, found_total)
}

fn summarize(r: &BankResult, allow_negative: bool) -> String {
    let t = &r.transfers;
    let transfers = format!(
        "{} transfers: {} ok, {} fail, {} info",
        t.total(),
        t.ok,
        t.fail,
        t.info
    );
    if r.checked_reads == 0 {
        return format!("no read completed: nothing to check ({transfers})");
    }
    let Some(first) = &r.first_bad else {
        let negatives = if allow_negative {
            ""
        } else {
            " with no negative balance"
        };
        return format!(
            "all {} reads saw the {} accounts summing to {}{negatives} ({transfers})",
            r.checked_reads, r.accounts, r.expected_total
        );
    };
    let kinds = r
        .error_counts
        .iter()
        .map(|(kind, n)| format!("{n} {}", kind.replace('-', " ")));
    let kinds: Vec<String> = kinds.collect();
    let mut s = format!(
        "{} of {} reads broke the invariant ({}); first: {}",
        r.bad_read_count,
        r.checked_reads,
        kinds.join(", "),
        first.describe()
    );
    if let Some(worst) = r.worst_bad.as_ref().filter(|w| w.op != first.op) {
        s.push_str(&format!("; worst: {}", worst.describe()));
    }
    s
}

/// ` at 4.21 s`, or nothing when the time is unknown.
pub(crate) fn at(time: Option<u64>) -> String {
    time.map_or_else(String::new, |ns| format!(" at {:.2} s", ns as f64 / 1e9))
}

/// A JSON value cut to a length that fits in a sentence.
pub(crate) fn short_json(v: &Value) -> String {
    const MAX: usize = 40;
    let s = v.to_string();
    if s.chars().count() <= MAX {
        return s;
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}...")
}

/// `a1, a2, a3 and 4 more`: names for a sentence, at most three.
fn name_list(mut names: Vec<String>) -> String {
    let more = names.len().saturating_sub(3);
    names.truncate(3);
    match more {
        0 => names.join(", "),
        n => format!("{} and {n} more", names.join(", ")),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON number when it fits in i64 (always, in practice), else a string so that converting
/// the result to a `serde_json::Value` cannot fail.
fn ser_i128<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
    match i64::try_from(*v) {
        Ok(n) => s.serialize_i64(n),
        Err(_) => s.collect_str(v),
    }
}

fn ser_opt_i128<S: Serializer>(v: &Option<i128>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_i128(v, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
