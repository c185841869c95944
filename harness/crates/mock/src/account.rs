//! The Google service account made for one run of the mocks: an RSA key of its own, handed to the
//! audited backend as the service-account JSON Google's SDKs read (`GOOGLE_APPLICATION_CREDENTIALS`),
//! and the public half the mocked token endpoint checks every assertion's RS256 signature with.
//! No real Google account is involved, and no key but this one gets a token.

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::Verifier as _;
use serde_json::{Value, json};

/// The account's project, as Vertex AI paths name it.
pub const PROJECT_ID: &str = "traceless-audit";
/// The account's e-mail: the issuer (`iss`) every assertion must carry.
pub const CLIENT_EMAIL: &str = "traceless-audit@traceless-audit.iam.gserviceaccount.com";
/// The key's id, sent by the SDKs as the assertion header's `kid`.
pub const KEY_ID: &str = "traceless-audit-key";

/// Modulus size: what Google's own service-account keys use.
const BITS: usize = 2048;

/// The account: its private key (PKCS#8 PEM, only ever written into the JSON) and its verifier.
pub struct ServiceAccount {
    private_pem: String,
    verifier: VerifyingKey<Sha256>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceAccount { .. }")
    }
}

/// Why an assertion's signature is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not `header.claims.signature`, or not base64url.
    Malformed,
    /// The header names another algorithm than RS256.
    Algorithm,
    /// Signed by another key.
    Signature,
}

impl ServiceAccount {
    /// Makes a fresh key (about a tenth of a second).
    pub fn generate() -> anyhow::Result<ServiceAccount> {
        let key = rsa::PrivateKey::new(&mut rand::rng(), BITS)
            .map_err(|e| anyhow::anyhow!("generating the service account's RSA key: {e}"))?;
        let private_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the service account's key: {e}"))?
            .to_string();
        Ok(ServiceAccount {
            verifier: VerifyingKey::new(key.to_public_key()),
            private_pem,
        })
    }

    /// The service-account JSON (Google's format), its token endpoint `token_uri`.
    pub fn json(&self, token_uri: &str) -> Value {
        json!({
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": KEY_ID,
            "private_key": self.private_pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        })
    }

    /// Checks a compact JWT's RS256 signature with this account's key; its claims when it holds.
    pub fn verify(&self, jwt: &str) -> Result<Value, Refused> {
        let b64 = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| Refused::Malformed)
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header, claims, signature] = parts.as_slice() else {
            return Err(Refused::Malformed);
        };
        let header: Value =
            serde_json::from_slice(&b64(header)?).map_err(|_| Refused::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(Refused::Algorithm);
        }
        let signature =
            Signature::try_from(b64(signature)?.as_slice()).map_err(|_| Refused::Signature)?;
        let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
        self.verifier
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| Refused::Signature)?;
        serde_json::from_slice(&b64(claims)?).map_err(|_| Refused::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};

    /// A JWT signed with the PKCS#8 PEM `pem`, as google-auth signs its assertions.
    fn signed(pem: &str, header: &Value, claims: &Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let key = SigningKey::<Sha256>::new(rsa::PrivateKey::from_pkcs8_pem(pem).unwrap());
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = key.sign(input.as_bytes()).to_vec();
        format!("{input}.{}", b64(&sig))
    }

    #[test]
    fn only_the_accounts_own_key_signs_an_accepted_assertion() {
        let account = ServiceAccount::generate().unwrap();
        let other = ServiceAccount::generate().unwrap();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": KEY_ID});
        let claims = json!({"iss": CLIENT_EMAIL, "scope": "s"});
        let json = account.json("https://127.0.0.1:1/token");
        let pem = json["private_key"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(json["client_email"], CLIENT_EMAIL);

        let good = signed(pem, &header, &claims);
        assert_eq!(account.verify(&good), Ok(claims.clone()));
        let forged = signed(&other.private_pem, &header, &claims);
        assert_eq!(account.verify(&forged), Err(Refused::Signature));
        // The claims changed after signing.
        let (head, rest) = good.split_once('.').unwrap();
        let sig = rest.split_once('.').unwrap().1;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let tampered = format!("{head}.{}.{sig}", b64(br#"{"iss":"x","scope":"s"}"#));
        assert_eq!(account.verify(&tampered), Err(Refused::Signature));
        let none = signed(pem, &json!({"alg": "none"}), &claims);
        assert_eq!(account.verify(&none), Err(Refused::Algorithm));
        assert_eq!(account.verify("a.b"), Err(Refused::Malformed));
    }
}
