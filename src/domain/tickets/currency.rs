//! Which currencies can be paid here, decided once from the enabled payment methods, so a
//! ticket class no buyer could pay for is refused when it is created or changed (422
//! `CURRENCY_NOT_SUPPORTED`), never after fans queued for it.
//!
//! PayOS, VNPay and ZaloPay settle in VND only. The sandbox stands in for them (it signs and
//! settles like they do), so it takes what they take: VND; a sandbox that took more would let
//! staging sell classes production could not. `free` moves no money: a class of a free event
//! (price 0) is payable in any currency, whatever providers are on.

use crate::domain::validation::CurrencyCode;

/// A way to pay that moves money, named as `paymentMethod` names it. The rules stay free of
/// the provider adapters; the shell maps its enabled providers onto these by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    Payos,
    Vnpay,
    Zalopay,
    Sandbox,
}

impl PaymentMethod {
    pub const ALL: [Self; 4] = [Self::Payos, Self::Vnpay, Self::Zalopay, Self::Sandbox];

    /// `payos`, `vnpay`, `zalopay` or `sandbox`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "payos" => Some(Self::Payos),
            "vnpay" => Some(Self::Vnpay),
            "zalopay" => Some(Self::Zalopay),
            "sandbox" => Some(Self::Sandbox),
            _ => None,
        }
    }
}

/// The currencies a payment method settles in.
pub fn currencies_of(method: PaymentMethod) -> &'static [CurrencyCode] {
    match method {
        PaymentMethod::Payos
        | PaymentMethod::Vnpay
        | PaymentMethod::Zalopay
        | PaymentMethod::Sandbox => &[CurrencyCode::VND],
    }
}

/// What this deployment can take payment in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencySupport {
    payable: Vec<CurrencyCode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no enabled payment method takes {currency}")]
pub struct CurrencyNotSupported {
    pub currency: CurrencyCode,
}

impl CurrencyNotSupported {
    pub fn code(self) -> &'static str {
        "CURRENCY_NOT_SUPPORTED"
    }
}

impl CurrencySupport {
    /// From the methods buyers may use here (the real providers enabled and, where on, the
    /// sandbox).
    pub fn from_methods(enabled: impl IntoIterator<Item = PaymentMethod>) -> Self {
        let mut payable = Vec::new();
        for method in enabled {
            for currency in currencies_of(method) {
                if !payable.contains(currency) {
                    payable.push(*currency);
                }
            }
        }
        Self { payable }
    }

    /// Whether a class in `currency` can be sold: always on a free event (nothing to pay),
    /// otherwise only if some enabled provider takes the currency.
    pub fn check_class(
        &self,
        currency: CurrencyCode,
        free_event: bool,
    ) -> Result<(), CurrencyNotSupported> {
        if free_event || self.payable.contains(&currency) {
            Ok(())
        } else {
            Err(CurrencyNotSupported { currency })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_takes_vnd_and_only_vnd() {
        let all = CurrencySupport::from_methods(PaymentMethod::ALL);
        assert_eq!(all.check_class(CurrencyCode::VND, false), Ok(()));
        assert_eq!(
            all.check_class(CurrencyCode::USD, false),
            Err(CurrencyNotSupported {
                currency: CurrencyCode::USD
            })
        );
        for method in PaymentMethod::ALL {
            assert_eq!(currencies_of(method), [CurrencyCode::VND]);
        }
        assert_eq!(
            PaymentMethod::parse("zalopay"),
            Some(PaymentMethod::Zalopay)
        );
        assert_eq!(PaymentMethod::parse("cash"), None);
    }

    #[test]
    fn with_no_method_enabled_only_free_classes_can_be_sold() {
        let none = CurrencySupport::from_methods([]);
        assert!(none.check_class(CurrencyCode::VND, false).is_err());
        assert_eq!(none.check_class(CurrencyCode::VND, true), Ok(()));
        assert_eq!(none.check_class(CurrencyCode::USD, true), Ok(()));
    }

    #[test]
    fn the_sandbox_alone_takes_what_the_real_providers_take() {
        let staging = CurrencySupport::from_methods([PaymentMethod::Sandbox]);
        assert_eq!(staging.check_class(CurrencyCode::VND, false), Ok(()));
        assert!(staging.check_class(CurrencyCode::EUR, false).is_err());
        assert_eq!(
            CurrencyNotSupported {
                currency: CurrencyCode::EUR
            }
            .code(),
            "CURRENCY_NOT_SUPPORTED"
        );
    }
}
