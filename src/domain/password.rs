//! The stored password-hash format: a self-describing, versioned PBKDF2-HMAC-SHA256 string,
//! its constant-time check, and when to upgrade it.
//!
//! Stored as `$pbkdf2-sha256$v=1$i=100000$<salt>$<hash>` (salt and hash in unpadded standard
//! base64, the PHC string convention). Every parameter a verifier needs is inside the string, so
//! raising the iteration count later only changes [`KdfParams::current`]: old hashes still
//! verify with their own parameters, and [`PasswordHash::needs_rehash`] tells login to store a
//! fresh hash while the plaintext is at hand.
//!
//! The derivation itself runs at the edge through WebCrypto (`crypto.subtle.deriveBits`, native
//! and off the wasm CPU budget), so this module takes derived bytes; [`derive_host`] is the same
//! derivation in pure Rust, for tests and as a fallback.
//!
//! Login flow: parse the stored hash → derive with `hash.params()` and `hash.salt()` →
//! `verify_derived` → if it matched and `needs_rehash(&KdfParams::current())`, derive again with
//! a fresh salt and store. For an unknown email, run the same steps against
//! [`PasswordHash::dummy`] so the answer takes as long as for a real account.

use std::fmt;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The algorithm tag at the start of every stored hash.
pub const ALGORITHM: &str = "pbkdf2-sha256";
/// The layout version of the string itself (not of the parameters, which it carries).
pub const FORMAT_VERSION: u32 = 1;

/// How a password hash is derived: PBKDF2-HMAC-SHA256 with these sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    pub iterations: u32,
    pub salt_len: usize,
    pub output_len: usize,
}

impl KdfParams {
    /// 100,000 iterations is the most the Workers runtime's WebCrypto accepts for PBKDF2 (it
    /// rejects higher counts); 16-byte salt and 32-byte output as NIST SP 800-132 suggests.
    pub const fn current() -> Self {
        Self {
            iterations: 100_000,
            salt_len: 16,
            output_len: 32,
        }
    }

    /// The `length` argument WebCrypto's `deriveBits` takes.
    pub fn output_bits(&self) -> usize {
        self.output_len * 8
    }
}

/// Why a stored hash string could not be read. Always a server-side fault (500), never the
/// caller's: the string came from our own database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordHashError {
    #[error("password hash does not use {ALGORITHM}")]
    UnknownAlgorithm,
    #[error("password hash format version {0} is not supported")]
    UnsupportedVersion(String),
    #[error("malformed password hash: {0}")]
    Malformed(&'static str),
}

impl PasswordHashError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownAlgorithm | Self::UnsupportedVersion(_) => "PASSWORD_HASH_UNSUPPORTED",
            Self::Malformed(_) => "PASSWORD_HASH_MALFORMED",
        }
    }
}

/// A parsed stored hash: the parameters it was made with and the derived bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// Salt and hash are enough to mount an offline guessing attack, so they stay out of logs.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .field("hash_len", &self.hash.len())
            .finish()
    }
}

/// Salt and hash of the timing dummy: arbitrary fixed bytes. No password is meant to match,
/// and a match would not matter: an unknown email is refused whatever the comparison says.
const DUMMY_SALT: [u8; 16] = *b"tb-timing-dummy!";
const DUMMY_HASH: [u8; 32] = [
    0x5e, 0x1f, 0x7a, 0x93, 0x0c, 0xd4, 0x62, 0xb8, 0x27, 0xe9, 0x41, 0x3d, 0x88, 0x16, 0xaf, 0x70,
    0xc2, 0x5b, 0x0e, 0x94, 0x3a, 0xf7, 0x61, 0xd8, 0x12, 0x9c, 0x4e, 0xb3, 0x75, 0x08, 0xea, 0x2d,
];

impl PasswordHash {
    /// Fewer iterations than this is not a hash we wrote; refusing it stops a tampered row from
    /// turning the check into a cheap oracle.
    pub const MIN_ITERATIONS: u32 = 1;
    /// Bounds the CPU a (tampered) stored hash can make one login spend.
    pub const MAX_ITERATIONS: u32 = 10_000_000;
    const SALT_LEN: std::ops::RangeInclusive<usize> = 8..=64;
    const HASH_LEN: std::ops::RangeInclusive<usize> = 16..=64;

    /// A hash just derived with `params` from `salt` (fresh random bytes from the caller).
    pub fn new(params: &KdfParams, salt: &[u8], derived: &[u8]) -> Result<Self, PasswordHashError> {
        if salt.len() != params.salt_len {
            return Err(PasswordHashError::Malformed(
                "salt length differs from the parameters",
            ));
        }
        if derived.len() != params.output_len {
            return Err(PasswordHashError::Malformed(
                "derived length differs from the parameters",
            ));
        }
        Self::checked(params.iterations, salt.to_vec(), derived.to_vec())
    }

    fn checked(iterations: u32, salt: Vec<u8>, hash: Vec<u8>) -> Result<Self, PasswordHashError> {
        if !(Self::MIN_ITERATIONS..=Self::MAX_ITERATIONS).contains(&iterations) {
            return Err(PasswordHashError::Malformed("iteration count out of range"));
        }
        if !Self::SALT_LEN.contains(&salt.len()) {
            return Err(PasswordHashError::Malformed("salt length out of range"));
        }
        if !Self::HASH_LEN.contains(&hash.len()) {
            return Err(PasswordHashError::Malformed("hash length out of range"));
        }
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// Reads `$pbkdf2-sha256$v=1$i=<iterations>$<salt b64>$<hash b64>`.
    pub fn parse(stored: &str) -> Result<Self, PasswordHashError> {
        let mut parts = stored.split('$');
        if parts.next() != Some("") {
            return Err(PasswordHashError::Malformed("must start with '$'"));
        }
        match parts.next() {
            Some(ALGORITHM) => {}
            Some(_) => return Err(PasswordHashError::UnknownAlgorithm),
            None => return Err(PasswordHashError::Malformed("missing algorithm")),
        }
        let version = parts
            .next()
            .and_then(|p| p.strip_prefix("v="))
            .ok_or(PasswordHashError::Malformed("missing version"))?;
        if version != FORMAT_VERSION.to_string() {
            return Err(PasswordHashError::UnsupportedVersion(version.to_string()));
        }
        let iterations = parts
            .next()
            .and_then(|p| p.strip_prefix("i="))
            .ok_or(PasswordHashError::Malformed("missing iteration count"))?;
        // Canonical decimal only, so one hash has exactly one spelling.
        if iterations.is_empty()
            || iterations.starts_with('0')
            || !iterations.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PasswordHashError::Malformed("iteration count not a number"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| PasswordHashError::Malformed("iteration count out of range"))?;
        let salt = parts
            .next()
            .and_then(|p| STANDARD_NO_PAD.decode(p).ok())
            .ok_or(PasswordHashError::Malformed("salt is not base64"))?;
        let hash = parts
            .next()
            .and_then(|p| STANDARD_NO_PAD.decode(p).ok())
            .ok_or(PasswordHashError::Malformed("hash is not base64"))?;
        if parts.next().is_some() {
            return Err(PasswordHashError::Malformed("trailing fields"));
        }
        Self::checked(iterations, salt, hash)
    }

    /// The string to store; [`PasswordHash::parse`] reads it back unchanged.
    pub fn format(&self) -> String {
        format!(
            "${ALGORITHM}$v={FORMAT_VERSION}$i={}${}${}",
            self.iterations,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(&self.hash)
        )
    }

    /// The parameters to re-derive with when checking a password against this hash.
    pub fn params(&self) -> KdfParams {
        KdfParams {
            iterations: self.iterations,
            salt_len: self.salt.len(),
            output_len: self.hash.len(),
        }
    }

    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// True when the hash was made with other parameters than `current`. "Other", not "weaker":
    /// a deliberate change in either direction (say, down to what WebCrypto accepts) converges
    /// as users log in.
    pub fn needs_rehash(&self, current: &KdfParams) -> bool {
        self.params() != *current
    }

    /// Whether `derived` (the candidate password derived with [`PasswordHash::params`]) is this
    /// hash. Constant time in the bytes compared, so timing reveals no matching prefix.
    pub fn verify_derived(&self, derived: &[u8]) -> bool {
        // Lengths are public (they are in the parameters); `ct_eq` answers 0 on a mismatch.
        bool::from(self.hash.as_slice().ct_eq(derived))
    }

    /// A well-formed hash with the current parameters, checked against when the email is
    /// unknown so that "no such user" costs the same derivation as "wrong password".
    pub fn dummy() -> Self {
        Self {
            iterations: KdfParams::current().iterations,
            salt: DUMMY_SALT.to_vec(),
            hash: DUMMY_HASH.to_vec(),
        }
    }
}

/// PBKDF2-HMAC-SHA256 in pure Rust: what WebCrypto's `deriveBits` computes at the edge.
/// 100,000 iterations cost about 0.1 s of optimised CPU; in the Worker prefer WebCrypto.
pub fn derive_host(password: &[u8], salt: &[u8], params: &KdfParams) -> Vec<u8> {
    let mut derived = vec![0u8; params.output_len];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, params.iterations, &mut derived);
    derived
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn params(iterations: u32, salt_len: usize, output_len: usize) -> KdfParams {
        KdfParams {
            iterations,
            salt_len,
            output_len,
        }
    }

    #[test]
    fn host_derivation_matches_published_pbkdf2_hmac_sha256_vectors() {
        // Widely published SHA-256 counterparts of the RFC 6070 vectors.
        for (iterations, expected) in [
            (
                1,
                "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
            ),
            (
                2,
                "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            ),
            (
                4096,
                "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
            ),
        ] {
            let derived = derive_host(b"password", b"salt", &params(iterations, 4, 32));
            assert_eq!(hex(&derived), expected, "{iterations} iterations");
        }
    }

    #[test]
    fn host_derivation_matches_the_rfc_7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64.
        let derived = derive_host(b"passwd", b"salt", &params(1, 4, 64));
        assert_eq!(
            hex(&derived),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
    }

    #[test]
    fn a_known_vector_round_trips_through_the_stored_format() {
        let salt = b"saltsalt";
        let derived = derive_host(b"password", salt, &params(1, 8, 32));
        let hash = PasswordHash::new(&params(1, 8, 32), salt, &derived).ok();

        let stored = hash.as_ref().map(PasswordHash::format);
        assert_eq!(
            stored.as_deref(),
            Some(
                format!(
                    "$pbkdf2-sha256$v=1$i=1$c2FsdHNhbHQ${}",
                    STANDARD_NO_PAD.encode(&derived)
                )
                .as_str()
            )
        );
        let reparsed = stored.as_deref().map(PasswordHash::parse);
        assert_eq!(
            reparsed,
            Some(Ok(hash.clone().unwrap_or_else(PasswordHash::dummy)))
        );
    }

    /// The long published vector (RFC 6070's long inputs, with SHA-256): its 36-byte salt and
    /// 40-byte output fit the stored format as they are.
    const LONG_PASSWORD: &[u8] = b"passwordPASSWORDpassword";
    const LONG_SALT: &[u8] = b"saltSALTsaltSALTsaltSALTsaltSALTsalt";
    const LONG_DERIVED: &str =
        "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect()
    }

    #[test]
    fn a_published_vector_written_in_the_stored_format_verifies() {
        let stored = format!(
            "$pbkdf2-sha256$v=1$i=4096${}${}",
            STANDARD_NO_PAD.encode(LONG_SALT),
            STANDARD_NO_PAD.encode(unhex(LONG_DERIVED))
        );
        let Ok(hash) = PasswordHash::parse(&stored) else {
            panic!("the published vector is a well-formed stored hash");
        };
        assert_eq!(hash.params(), params(4096, 36, 40));
        assert_eq!(hash.format(), stored);

        let right = derive_host(LONG_PASSWORD, hash.salt(), &hash.params());
        assert_eq!(hex(&right), LONG_DERIVED);
        assert!(hash.verify_derived(&right));

        let wrong = derive_host(b"passwordPASSWORDpassworD", hash.salt(), &hash.params());
        assert!(!hash.verify_derived(&wrong));
        assert!(!hash.verify_derived(&right[..39]));
        assert!(!hash.verify_derived(&[]));
        assert!(hash.needs_rehash(&KdfParams::current()));
    }

    #[test]
    fn hashes_made_with_old_parameters_need_a_rehash() {
        let current = KdfParams::current();
        let salt = [7u8; 16];
        let at = |iterations: u32| PasswordHash {
            iterations,
            salt: salt.to_vec(),
            hash: vec![1; 32],
        };
        assert!(!at(100_000).needs_rehash(&current));
        assert!(at(10_000).needs_rehash(&current));
        assert!(at(600_000).needs_rehash(&current));
        let short_salt = PasswordHash {
            salt: vec![7; 8],
            ..at(100_000)
        };
        assert!(short_salt.needs_rehash(&current));
    }

    #[test]
    fn current_parameters_fit_webcrypto_in_workers() {
        let current = KdfParams::current();
        assert_eq!(current.iterations, 100_000);
        assert_eq!(current.salt_len, 16);
        assert_eq!(current.output_bits(), 256);
    }

    #[test]
    fn the_timing_dummy_uses_the_current_parameters_and_is_well_formed() {
        let dummy = PasswordHash::dummy();
        assert_eq!(dummy.params(), KdfParams::current());
        assert!(!dummy.needs_rehash(&KdfParams::current()));
        assert_eq!(PasswordHash::parse(&dummy.format()), Ok(dummy));
    }

    #[test]
    fn the_timing_dummy_does_not_match_common_passwords() {
        let dummy = PasswordHash::dummy();
        for guess in ["", "password", "12345678"] {
            let derived = derive_host(guess.as_bytes(), dummy.salt(), &dummy.params());
            assert!(!dummy.verify_derived(&derived), "{guess:?}");
        }
    }

    #[test]
    fn a_hash_never_debug_prints_its_bytes() {
        let dummy = PasswordHash::dummy();
        let printed = format!("{dummy:?}");
        assert!(
            !printed.contains(&STANDARD_NO_PAD.encode(dummy.salt())),
            "{printed}"
        );
        assert!(!printed.contains("tb-timing"), "{printed}");
        assert!(!printed.contains("94"), "{printed}");
        assert!(printed.contains("iterations: 100000"));
    }

    #[test]
    fn new_refuses_bytes_that_disagree_with_the_parameters() {
        let current = KdfParams::current();
        assert!(PasswordHash::new(&current, &[0; 8], &[0; 32]).is_err());
        assert!(PasswordHash::new(&current, &[0; 16], &[0; 20]).is_err());
        assert!(PasswordHash::new(&params(0, 16, 32), &[0; 16], &[0; 32]).is_err());
        assert!(PasswordHash::new(&current, &[0; 16], &[0; 32]).is_ok());
    }

    #[test]
    fn malformed_stored_hashes_are_refused_with_a_reason() {
        let salt = STANDARD_NO_PAD.encode([1u8; 16]);
        let hash = STANDARD_NO_PAD.encode([2u8; 32]);
        let ok = format!("$pbkdf2-sha256$v=1$i=100000${salt}${hash}");
        assert!(PasswordHash::parse(&ok).is_ok());

        let unsupported = [
            format!("$pbkdf2-sha1$v=1$i=100000${salt}${hash}"),
            format!("$argon2id$v=19$m=65536,t=3,p=4${salt}${hash}"),
            format!("$pbkdf2-sha256$v=2$i=100000${salt}${hash}"),
        ];
        for stored in &unsupported {
            assert_eq!(
                PasswordHash::parse(stored).map_err(|e| e.code()),
                Err("PASSWORD_HASH_UNSUPPORTED"),
                "{stored}"
            );
        }
        let malformed = [
            String::new(),
            "bcrypt".to_string(),
            format!("pbkdf2-sha256$v=1$i=100000${salt}${hash}"),
            format!("$pbkdf2-sha256$i=100000${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=0${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=0100000${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=+100000${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=99999999999${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=10000001${salt}${hash}"),
            format!("$pbkdf2-sha256$v=1$i=100000${salt}=${hash}"),
            format!("$pbkdf2-sha256$v=1$i=100000$!!!${hash}"),
            format!("$pbkdf2-sha256$v=1$i=100000${salt}"),
            format!("$pbkdf2-sha256$v=1$i=100000${salt}${hash}$extra"),
            format!("$pbkdf2-sha256$v=1$i=100000$AAAA${hash}"),
            format!("$pbkdf2-sha256$v=1$i=100000${salt}$AAAA"),
        ];
        for stored in &malformed {
            assert_eq!(
                PasswordHash::parse(stored).map_err(|e| e.code()),
                Err("PASSWORD_HASH_MALFORMED"),
                "{stored}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_well_formed_hash_round_trips(
            iterations in 1u32..=10_000_000,
            salt in proptest::collection::vec(any::<u8>(), 8..=64),
            hash in proptest::collection::vec(any::<u8>(), 16..=64),
        ) {
            let parsed = PasswordHash::checked(iterations, salt, hash);
            prop_assert!(parsed.is_ok());
            if let Ok(parsed) = parsed {
                prop_assert_eq!(PasswordHash::parse(&parsed.format()), Ok(parsed));
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,120}") {
            let _ = PasswordHash::parse(&text);
        }

        #[test]
        fn verification_accepts_exactly_the_stored_bytes(
            hash in proptest::collection::vec(any::<u8>(), 32),
            other in proptest::collection::vec(any::<u8>(), 0..=40),
        ) {
            let stored = PasswordHash { iterations: 1, salt: vec![0; 16], hash: hash.clone() };
            prop_assert!(stored.verify_derived(&hash));
            prop_assert_eq!(stored.verify_derived(&other), other == hash);
        }
    }
}
