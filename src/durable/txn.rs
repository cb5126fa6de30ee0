//! All-or-nothing writes: runs a closure inside `ctx.storage.transactionSync(fn)`, which
//! workers-rs 0.8.7 does not wrap, reached through `js_sys::Reflect` on the raw storage object.
//!
//! The closure's `Err` is turned into a JavaScript exception thrown out of the callback, which
//! makes the runtime roll back every SQL statement the closure ran; the `Err` value itself is
//! handed back to the caller unchanged.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, Storage};

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxnFailure<E> {
    /// The closure returned `Err`: everything it wrote was rolled back.
    RolledBack(E),
    /// The runtime refused or failed the transaction (the closure's writes are not kept).
    Runtime(String),
}

pub fn js_error_text(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value
        .as_string()
        .unwrap_or_else(|| "unknown JavaScript error".to_owned())
}

/// Runs `work` as one SQLite transaction of the object's storage.
///
/// `work` must be synchronous and `'static` (it crosses into JavaScript as a callback), so it
/// owns what it touches: clones of the `SqlStorage` handle and owned inputs.
pub fn transaction_sync<T, E, F>(storage: &Storage, work: F) -> Result<T, TxnFailure<E>>
where
    T: 'static,
    E: 'static,
    F: FnOnce() -> Result<T, E> + 'static,
{
    let raw: &JsValue = storage.as_raw().as_ref();
    let function = js_sys::Reflect::get(raw, &JsValue::from_str("transactionSync"))
        .map_err(|e| TxnFailure::Runtime(js_error_text(&e)))?
        .dyn_into::<js_sys::Function>()
        .map_err(|_| TxnFailure::Runtime("storage.transactionSync is not a function".into()))?;

    let slot: Rc<RefCell<Option<Result<T, E>>>> = Rc::new(RefCell::new(None));
    let out = Rc::clone(&slot);
    let callback = Closure::once(move || -> Result<JsValue, JsValue> {
        let result = work();
        let failed = result.is_err();
        // The borrow ends with this statement: nothing else runs while the callback does.
        *out.borrow_mut() = Some(result);
        if failed {
            Err(js_sys::Error::new("event hub transaction rolled back").into())
        } else {
            Ok(JsValue::UNDEFINED)
        }
    });
    let called = function.call1(raw, callback.as_ref().unchecked_ref());
    drop(callback);
    let result = slot.borrow_mut().take();
    match (called, result) {
        (Ok(_), Some(Ok(value))) => Ok(value),
        (_, Some(Err(error))) => Err(TxnFailure::RolledBack(error)),
        (Err(thrown), _) => Err(TxnFailure::Runtime(js_error_text(&thrown))),
        (Ok(_), None) => Err(TxnFailure::Runtime(
            "transactionSync returned without running its callback".into(),
        )),
    }
}
