//! JUnit XML for CI systems: one test suite per campaign, one test case per run, a failure
//! (with the verdict's reason as its message) for every run that missed its expectation.

use crate::html::escape;

/// One run of a campaign, as a test case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The test's name (the run's name in the store).
    pub name: String,
    /// Groups cases in CI's view: `<campaign>.<target>`.
    pub classname: String,
    pub seconds: f64,
    /// Why the run missed its expectation (`None`: it passed).
    pub failure: Option<Failure>,
    /// Extra text: where the run is stored, its verdict.
    pub output: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// One line: the verdict's reason.
    pub message: String,
    /// Details: expectation, verdict, report path.
    pub text: String,
}

/// The JUnit XML document of `suite`'s `cases`.
pub fn render(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let seconds: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{seconds:.3}\">\n\
         <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">\n",
        suite = escape(suite),
        tests = cases.len(),
    ));
    for case in cases {
        xml.push_str(&format!(
            "  <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\">\n",
            escape(&case.name),
            escape(&case.classname),
            case.seconds
        ));
        if let Some(failure) = &case.failure {
            xml.push_str(&format!(
                "    <failure message=\"{}\" type=\"missed-expectation\">{}</failure>\n",
                escape(&failure.message),
                escape(&failure.text)
            ));
        }
        if !case.output.is_empty() {
            xml.push_str(&format!(
                "    <system-out>{}</system-out>\n",
                escape(&case.output)
            ));
        }
        xml.push_str("  </testcase>\n");
    }
    xml.push_str("</testsuite>\n</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_case_per_run_and_failures_carry_the_reason() {
        let cases = vec![
            Case {
                name: "smoke-raft".into(),
                classname: "smoke.raft-kv".into(),
                seconds: 9.5,
                failure: None,
                output: "store/smoke-raft/x".into(),
            },
            Case {
                name: "smoke-raft-stale-read".into(),
                classname: "smoke.raft-kv".into(),
                seconds: 10.0,
                failure: Some(Failure {
                    message: "expected invalid, got valid: read <1> & \"2\"".into(),
                    text: "see report".into(),
                }),
                output: String::new(),
            },
        ];
        let xml = render("smoke", &cases);
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml
            .contains("<testcase name=\"smoke-raft\" classname=\"smoke.raft-kv\" time=\"9.500\">"));
        assert!(xml.contains(
            "message=\"expected invalid, got valid: read &lt;1&gt; &amp; &quot;2&quot;\""
        ));
        assert_eq!(xml.matches("<testcase ").count(), 2);
        assert_eq!(xml.matches("<failure ").count(), 1);
    }
}
