//! The ticket's QR code as an SVG image (`GET /api/tickets/{id}/qr.svg`), drawn by the
//! `qrcode` crate from the signed `qr` payload.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Medium error correction: a phone screen with a crack or glare still scans, and a 168-byte
/// payload stays a version 8 code (49 modules) that reads fast at the door.
pub fn qr_svg(payload: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tickets::TicketSigner;

    #[test]
    fn a_ticket_qr_draws_as_a_square_svg_of_its_payload() {
        let qr = TicketSigner::from_seed(&[1u8; 32])
            .sign(
                "0190f3a2-7c1e-7b4d-9a3f-000000000e01",
                "0190f3a2-7c1e-8b4d-9a3f-0000000000c1",
                "0190f3a2-7c1e-7b4d-9a3f-0000000000a1",
            )
            .expect("uuids sign");
        let svg = qr_svg(&qr).expect("fits a QR code");
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        let code = QrCode::with_error_correction_level(qr.as_bytes(), EcLevel::M).expect("fits");
        // The drawing is this payload's symbol: same width in modules (plus the quiet zone).
        let modules = code.width() + 8;
        let side = modules * (256usize).div_ceil(modules);
        assert!(
            svg.contains(&format!("width=\"{side}\"")),
            "{side}: {svg:.200}"
        );
        assert_ne!(svg, qr_svg("TB1.other").expect("fits"));
        assert_eq!(svg, qr_svg(&qr).expect("fits"));
    }

    #[test]
    fn a_payload_too_big_for_any_qr_code_is_an_error_not_a_panic() {
        assert!(qr_svg(&"x".repeat(4000)).is_err());
    }
}
