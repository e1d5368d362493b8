//! Replays the `ids`, `sso_tokens` and `scim_filter` fuzz corpora (fuzz/corpus/) through the fuzz targets' own
//! checks.

mod ids {
    include!("../../fuzz/checks/ids.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn ids_corpus() {
        replay(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/ids"));
    }
}

mod sso_tokens {
    include!("../../fuzz/checks/sso_tokens.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn sso_tokens_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/sso_tokens"
        ));
    }

    #[test]
    fn the_providers_own_token_verifies_and_nothing_else_in_the_corpus_does() {
        let at = zt_core::Timestamp::from_unix_millis(AT_MS);
        let ok = zt_core::identity::token_checks::logout_token(GOOD, JWKS, ISSUER, CLIENT, at);
        assert_eq!(ok.as_deref(), Ok("j1"));
        let later = zt_core::Timestamp::from_unix_millis(AT_MS + 3_600_000);
        let e = zt_core::identity::token_checks::logout_token(GOOD, JWKS, ISSUER, CLIENT, later);
        assert_eq!(e, Err(zt_core::identity::SsoRefusal::Expired));
        let other = zt_core::identity::token_checks::logout_token(GOOD, JWKS, ISSUER, "zt-b", at);
        assert_eq!(other, Err(zt_core::identity::SsoRefusal::Audience));
    }
}

mod scim_filter {
    include!("../../fuzz/checks/scim_filter.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn scim_filter_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/scim_filter"
        ));
    }
}
