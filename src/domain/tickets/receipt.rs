//! The order confirmation a buyer receives once their tickets are issued: composed here, stored
//! in `mail_outbox` by the shell (a sender for production is a follow-up).

/// One line of the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTicket<'a> {
    pub code: &'a str,
    pub ticket_class_name: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub subject: String,
    pub body: String,
}

/// The receipt of order `order_code` for `event_name`, listing every ticket's code, so a buyer
/// can get in by typing a code even without the app.
pub fn compose(order_code: &str, event_name: &str, tickets: &[ReceiptTicket<'_>]) -> Receipt {
    let mut body =
        format!("Your order {order_code} for {event_name} is confirmed. Your tickets:\n\n");
    for ticket in tickets {
        body.push_str(&format!(
            "  {}  {}\n",
            ticket.code, ticket.ticket_class_name
        ));
    }
    body.push_str(
        "\nShow each ticket's QR code at the door (under My tickets), or give its code.\n",
    );
    Receipt {
        subject: format!("Your tickets for {event_name} (order {order_code})"),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receipt_lists_every_ticket_code_with_its_class() {
        let receipt = compose(
            "TB-7KQ4M2XD9B",
            "Son Tung M-TP Live",
            &[
                ReceiptTicket {
                    code: "AAAA-BBBB-CCCC",
                    ticket_class_name: "VIP",
                },
                ReceiptTicket {
                    code: "DDDD-EEEE-FFFF",
                    ticket_class_name: "GA",
                },
            ],
        );
        assert!(receipt.subject.contains("TB-7KQ4M2XD9B"));
        assert!(receipt.subject.contains("Son Tung M-TP Live"));
        assert!(receipt.body.contains("AAAA-BBBB-CCCC  VIP"));
        assert!(receipt.body.contains("DDDD-EEEE-FFFF  GA"));
    }
}
