//! The runtime's WebCrypto, for the one thing pure Rust would do too slowly in wasm: the
//! password KDF (PBKDF2 at 100,000 iterations runs natively here) and the stored password
//! hashes made with it, for registration, login and profile changes alike; plus secure
//! random bytes.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::domain::password::{KdfParams, PasswordHash};
use crate::domain::validation::Password;
use crate::error::ApiError;

fn js_err(context: &str) -> impl Fn(JsValue) -> ApiError + '_ {
    move |e| ApiError::Internal(format!("{context}: {e:?}"))
}

fn get(target: &JsValue, key: &str) -> Result<JsValue, ApiError> {
    Reflect::get(target, &JsValue::from_str(key)).map_err(js_err(key))
}

async fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, ApiError> {
    let f: Function = get(target, method)?.dyn_into().map_err(js_err(method))?;
    let array: Array = args.iter().collect();
    let promise: Promise = f
        .apply(target, &array)
        .map_err(js_err(method))?
        .dyn_into()
        .map_err(js_err(method))?;
    JsFuture::from(promise).await.map_err(js_err(method))
}

/// PBKDF2-HMAC-SHA256 through `crypto.subtle.deriveBits`.
pub async fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    output_bits: u32,
) -> Result<Vec<u8>, ApiError> {
    let subtle = get(&get(&js_sys::global(), "crypto")?, "subtle")?;
    let usages: Array = [JsValue::from_str("deriveBits")].iter().collect();
    let key = call(
        &subtle,
        "importKey",
        &[
            "raw".into(),
            Uint8Array::from(password).into(),
            "PBKDF2".into(),
            JsValue::FALSE,
            usages.into(),
        ],
    )
    .await?;
    let params = Object::new();
    let set =
        |k: &str, v: JsValue| Reflect::set(&params, &JsValue::from_str(k), &v).map_err(js_err(k));
    set("name", "PBKDF2".into())?;
    set("hash", "SHA-256".into())?;
    set("salt", Uint8Array::from(salt).into())?;
    set("iterations", JsValue::from_f64(iterations as f64))?;
    let bits = call(
        &subtle,
        "deriveBits",
        &[params.into(), key, JsValue::from_f64(output_bits as f64)],
    )
    .await?;
    Ok(Uint8Array::new(&bits).to_vec())
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(buf)
}

/// The stored form of a new password: a fresh random salt, derived with `params`.
pub async fn hash_password(password: &Password, params: &KdfParams) -> Result<String, ApiError> {
    let salt = random_bytes::<16>()?;
    let derived = derive_password(password.expose_bytes(), &salt, params).await?;
    PasswordHash::new(params, &salt, &derived)
        .map(|h| h.format())
        .map_err(ApiError::internal)
}

/// Whether `password` is the one `stored` (a PHC-style hash) was made from; for a password
/// change, which must prove the current password, not just hold a token.
pub async fn password_matches(stored: &str, password: &str) -> Result<bool, ApiError> {
    let stored = PasswordHash::parse(stored).map_err(ApiError::internal)?;
    let derived = derive_password(password.as_bytes(), stored.salt(), &stored.params()).await?;
    Ok(stored.verify_derived(&derived))
}

/// The bytes a stored hash with this salt and these parameters is checked against.
pub async fn derive_password(
    password: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<Vec<u8>, ApiError> {
    pbkdf2_sha256(
        password,
        salt,
        params.iterations,
        params.output_bits() as u32,
    )
    .await
}
