//! Token checks: ID tokens through `openidconnect`'s verifier plus what it leaves out (`azp`,
//! `nbf`, skew, the algorithm allow-list), and back-channel logout tokens, which it does not
//! know, by the same keys and rules.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm};
use openidconnect::{
    ClaimsVerificationError, ClientId, IdTokenVerifier, IssuerUrl, JsonWebKey as _,
    JsonWebKeyAlgorithm, JsonWebKeyUse as _, Nonce, SignatureVerificationError,
};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use super::SsoRefusal;
use super::keys::{KeySet, SigningKey};
use crate::clock::Timestamp;

/// The `events` member a logout token must carry.
pub(crate) const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a token is checked against.
pub(crate) struct Checks<'a> {
    pub(crate) issuer: &'a IssuerUrl,
    pub(crate) client_id: &'a ClientId,
    /// Asymmetric algorithms only: HMAC and `none` are never in it.
    pub(crate) algorithms: &'a [CoreJwsSigningAlgorithm],
    pub(crate) now: Timestamp,
    pub(crate) skew: Duration,
    pub(crate) max_age: Option<Duration>,
}

impl Checks<'_> {
    fn skew_ms(&self) -> i64 {
        i64::try_from(self.skew.as_millis()).unwrap_or(i64::MAX)
    }

    /// Whether `seconds` (a JWT time) is later than now plus the skew.
    fn in_future(&self, seconds: i64) -> bool {
        seconds.saturating_mul(1000) > self.now.unix_millis().saturating_add(self.skew_ms())
    }

    /// Whether `seconds` (a JWT time) is at or before now minus the skew.
    fn in_past(&self, seconds: i64) -> bool {
        seconds.saturating_mul(1000) <= self.now.unix_millis().saturating_sub(self.skew_ms())
    }
}

/// What a verified ID token says.
#[derive(Debug, Clone)]
pub(crate) struct IdClaims {
    pub(crate) subject: String,
    pub(crate) sid: Option<String>,
    /// Every claim of the payload, for the provider's claim map.
    pub(crate) all: Map<String, Value>,
}

/// What a verified logout token says.
#[derive(Debug, Clone)]
pub(crate) struct LogoutClaims {
    pub(crate) subject: Option<String>,
    pub(crate) sid: Option<String>,
    pub(crate) jti: String,
    /// Its expiry, in seconds since the epoch.
    pub(crate) exp: i64,
}

fn chrono_of(millis: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

/// The payload of a compact JWS as JSON, unverified.
fn payload_of(raw: &str) -> Result<Map<String, Value>, SsoRefusal> {
    let mut parts = raw.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SsoRefusal::Malformed);
    };
    json_of(payload)
}

/// A base64url segment holding a JSON object.
fn json_of(segment: &str) -> Result<Map<String, Value>, SsoRefusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| SsoRefusal::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(SsoRefusal::Malformed),
    }
}

fn refusal_of(error: &ClaimsVerificationError) -> SsoRefusal {
    match error {
        ClaimsVerificationError::Expired(_) => SsoRefusal::Expired,
        ClaimsVerificationError::InvalidAudience(_) => SsoRefusal::Audience,
        ClaimsVerificationError::InvalidIssuer(_) => SsoRefusal::Issuer,
        ClaimsVerificationError::InvalidNonce(_) => SsoRefusal::Nonce,
        ClaimsVerificationError::InvalidAuthTime(_) => SsoRefusal::AuthTime,
        ClaimsVerificationError::Unsupported(_) => SsoRefusal::Algorithm,
        ClaimsVerificationError::SignatureVerification(e) => signature_refusal(e),
        _ => SsoRefusal::Claims,
    }
}

fn signature_refusal(error: &SignatureVerificationError) -> SsoRefusal {
    match error {
        SignatureVerificationError::NoMatchingKey => SsoRefusal::UnknownKey,
        SignatureVerificationError::DisallowedAlg(_)
        | SignatureVerificationError::UnsupportedAlg(_)
        | SignatureVerificationError::NoSignature => SsoRefusal::Algorithm,
        _ => SsoRefusal::Signature,
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Verifies an ID token: signature by a key of `jwks` under an allowed asymmetric algorithm,
/// issuer, audience (no other untrusted audience) and `azp`, expiry and not-before within the
/// skew, issue time not in the future, the nonce when one was sent (compared in constant time),
/// and `auth_time` against `max_age`.
pub(crate) fn verify_id_token(
    raw: &str,
    jwks: &KeySet,
    checks: &Checks<'_>,
    nonce: Option<&str>,
) -> Result<IdClaims, SsoRefusal> {
    let token: CoreIdToken = raw.parse().map_err(|_| SsoRefusal::Malformed)?;
    let now_ms = checks.now.unix_millis();
    let skew = checks.skew_ms();
    let max_age = checks.max_age;
    let verifier = IdTokenVerifier::<SigningKey>::new_public_client(
        checks.client_id.clone(),
        checks.issuer.clone(),
        jwks.clone(),
    )
    .set_allowed_algs(checks.algorithms.iter().cloned())
    // Expiry with the skew: the verifier rejects `now >= exp`.
    .set_time_fn(move || chrono_of(now_ms.saturating_sub(skew)))
    .set_auth_time_verifier_fn(move |auth_time| match (max_age, auth_time) {
        (None, _) => Ok(()),
        (Some(_), None) => Err("no auth_time".to_owned()),
        (Some(max), Some(at)) => {
            let max = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
            if now_ms.saturating_sub(at.timestamp_millis()) > max.saturating_add(skew) {
                Err("authenticated too long ago".to_owned())
            } else {
                Ok(())
            }
        }
    });
    let expected = nonce.map(|n| n.as_bytes().to_vec());
    let nonce_check = move |found: Option<&Nonce>| -> Result<(), String> {
        match (&expected, found) {
            (None, _) => Ok(()),
            (Some(_), None) => Err("missing nonce".to_owned()),
            (Some(expected), Some(found)) => {
                if bool::from(expected.as_slice().ct_eq(found.secret().as_bytes())) {
                    Ok(())
                } else {
                    Err("nonce mismatch".to_owned())
                }
            }
        }
    };
    let claims = token
        .claims(&verifier, nonce_check)
        .map_err(|e| refusal_of(&e))?;
    let subject = claims.subject().as_str().to_owned();
    let all = payload_of(raw)?;
    if let Some(azp) = all.get("azp") {
        if azp.as_str() != Some(checks.client_id.as_str()) {
            return Err(SsoRefusal::AuthorizedParty);
        }
    } else if claims.audiences().len() > 1 {
        return Err(SsoRefusal::AuthorizedParty);
    }
    // Issued in the future (checked here: the verifier would call it expired).
    if all
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| checks.in_future(iat))
    {
        return Err(SsoRefusal::NotYetValid);
    }
    if let Some(nbf) = all.get("nbf") {
        match nbf.as_i64() {
            Some(nbf) if !checks.in_future(nbf) => {}
            Some(_) => return Err(SsoRefusal::NotYetValid),
            None => return Err(SsoRefusal::Claims),
        }
    }
    Ok(IdClaims {
        subject,
        sid: string_claim(&all, "sid"),
        all,
    })
}

/// Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section 2.6):
/// the same signature rules as an ID token, issuer and audience, `iat` present, `exp` not
/// passed, a `jti`, the back-channel `events` member, no `nonce`, and a `sub` or a `sid`.
pub(crate) fn verify_logout_token(
    raw: &str,
    jwks: &KeySet,
    checks: &Checks<'_>,
) -> Result<LogoutClaims, SsoRefusal> {
    let mut parts = raw.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SsoRefusal::Malformed);
    };
    let header = json_of(header)?;
    if let Some(typ) = header.get("typ") {
        let typ = typ.as_str().unwrap_or_default().to_ascii_lowercase();
        if !matches!(
            typ.as_str(),
            "logout+jwt" | "application/logout+jwt" | "jwt"
        ) {
            return Err(SsoRefusal::Claims);
        }
    }
    let alg: CoreJwsSigningAlgorithm = header
        .get("alg")
        .cloned()
        .and_then(|alg| serde_json::from_value(alg).ok())
        .ok_or(SsoRefusal::Algorithm)?;
    if !checks.algorithms.contains(&alg) {
        return Err(SsoRefusal::Algorithm);
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let key = signing_key(jwks, kid, &alg)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SsoRefusal::Malformed)?;
    let signed_len = raw.len() - signature_len(raw);
    key.verify_signature(&alg, &raw.as_bytes()[..signed_len], &signature)
        .map_err(|e| signature_refusal(&e))?;
    let claims = json_of(payload)?;
    if claims.get("iss").and_then(Value::as_str) != Some(checks.issuer.as_str()) {
        return Err(SsoRefusal::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == checks.client_id.as_str(),
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str() == Some(checks.client_id.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(SsoRefusal::Audience);
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if !checks.in_future(iat) => {}
        Some(_) => return Err(SsoRefusal::NotYetValid),
        None => return Err(SsoRefusal::Claims),
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(SsoRefusal::Claims)?;
    if checks.in_past(exp) {
        return Err(SsoRefusal::Expired);
    }
    if claims.contains_key("nonce") {
        return Err(SsoRefusal::Nonce);
    }
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(SsoRefusal::Claims);
    }
    let jti = string_claim(&claims, "jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(SsoRefusal::Claims)?;
    let subject = string_claim(&claims, "sub");
    let sid = string_claim(&claims, "sid");
    if subject.is_none() && sid.is_none() {
        return Err(SsoRefusal::Claims);
    }
    Ok(LogoutClaims {
        subject,
        sid,
        jti,
        exp,
    })
}

/// The length of the signature segment with its dot.
fn signature_len(raw: &str) -> usize {
    raw.rfind('.').map_or(0, |dot| raw.len() - dot)
}

/// The one key of `jwks` that may check `alg` under `kid`.
fn signing_key<'k>(
    jwks: &'k KeySet,
    kid: Option<&str>,
    alg: &CoreJwsSigningAlgorithm,
) -> Result<&'k SigningKey, SsoRefusal> {
    let mut found = jwks.keys().iter().filter(|key| {
        let kid_ok = match kid {
            Some(kid) => key.key_id().is_some_and(|k| k.as_str() == kid),
            None => true,
        };
        let use_ok = key.key_use().is_none_or(|u| u.allows_signature());
        let alg_ok = match key.signing_alg() {
            JsonWebKeyAlgorithm::Algorithm(a) => a == alg,
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Unsupported => false,
        };
        kid_ok && use_ok && alg_ok
    });
    match (found.next(), found.next()) {
        (Some(key), None) => Ok(key),
        (None, _) => Err(SsoRefusal::UnknownKey),
        (Some(_), Some(_)) => Err(SsoRefusal::Signature),
    }
}
