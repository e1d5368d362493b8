// The `sso_tokens` fuzz check, shared by the fuzz target and zt-core's corpus replay
// (`include!`). The key set is oidc-provider's (kid `fuzz-key`); `GOOD` is a logout token it
// signed, the only input that may verify.

const JWKS: &str = r#"{"keys":[{"kty":"RSA","use":"sig","kid":"fuzz-key","alg":"RS256","e":"AQAB","n":"tuRXToj4tVmQ1C4p9I9FboxYZKCVlQ_xn03lkVtlpM0evMrUgrA5jprwAHjZZehKGuTT0oIvAmk8CAp3ZDQVh9NN2gPSBCdFx0r6nJiQgTz8SWaIJpBx5mm_rxhnJGny6ohWl92H-Lxgd-8wI8lEUu4PuW9HV0xoRMYJe1BRYr0HwPgbTGX7mRs4KO2cM9al6j3ZiRmmtfgqGm95QwzxlklJH5mImE3E_6TsmTcty8uD8kGFsKABCayagbpnn_otCGAlfnzMJEYt--ZsCj1GPLfwMprUjI4WR4aFoAMysK0zAai2W8KYI0kU7Vkv5p2YRaF0yEDs4Vu5Od_9DkmGPQ"}]}"#;
const ISSUER: &str = "http://127.0.0.1:9393";
const CLIENT: &str = "zt-fuzz";
/// The provider's logout token (sub alice, sid s1, jti j1), valid at `AT`.
const GOOD: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImxvZ291dCtqd3QiLCJraWQiOiJmdXp6LWtleSJ9.eyJzdWIiOiJhbGljZSIsImV2ZW50cyI6eyJodHRwOi8vc2NoZW1hcy5vcGVuaWQubmV0L2V2ZW50L2JhY2tjaGFubmVsLWxvZ291dCI6e319LCJqdGkiOiJqMSIsInNpZCI6InMxIiwiYXVkIjoienQtZnV6eiIsImV4cCI6MTc5NjM1NjA3OSwiaWF0IjoxNzk2MzU1OTU5LCJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjkzOTMifQ.dbaSakdv9qXMMAwaXpVgv8jRyvuxlTzsIvUMyhGQWP1G5pJozNr9T2OgIXDstyc1AwZ-6NCjMzP27-6k2vk0gU-t9IDNZFSo0-HsrWAdb0x6Zoj2LZ8h3auQP6l4fdhSu-EIsQsNe_Cy_CkqCN_nwH1NArP6GPlHcQ4GAvd8YYTbUcqKYcsVSqlW2qGlxxfZk1ZIIrmhQPpx2xQldezswOJVp_IrcRdYXzghWjxjaPxlGrwjP2t-LoaYZuoWpTcLjSTD9CTMElTCYO9O4UlxK5_J2B_SM_AUirusi4TEl3JSfnNqBuxfzVY2lLtEXi4MjMTIandm2ZUfNbKWfg2ItQ";
/// Within the good token's life (iat 1796355959, exp 1796356079).
const AT_MS: i64 = 1_796_356_000_000;

/// Neither check panics on any text, and nothing but the provider's own token verifies: first
/// byte even, as an ID token; odd, as a logout token.
fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let at = zt_core::Timestamp::from_unix_millis(AT_MS);
    let verified = if mode % 2 == 0 {
        zt_core::identity::token_checks::id_token(raw, JWKS, ISSUER, CLIENT, Some("n"), at).is_ok()
    } else {
        zt_core::identity::token_checks::logout_token(raw, JWKS, ISSUER, CLIENT, at).is_ok()
    };
    if verified {
        assert_eq!(raw, GOOD, "a token the provider did not sign verified");
    }
}
