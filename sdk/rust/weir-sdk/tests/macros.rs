//! The attribute macros accept the signatures they document and reject the
//! rest with an error that points at the mistake.

#[test]
fn signatures() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
