//! Perfect negotiation (docs/protocol.md §2) for one connection, as a pure state machine: which
//! description that arrives is taken, which is ignored, and when our own offer must be rolled
//! back first. Either side may offer at any time (a camera added, a screen shared); when both do
//! at once, the polite peer (the smaller id) gives way and the impolite one carries on.
//!
//! ```
//! use confab_core::peer::negotiation::{Negotiation, Step};
//! use confab_proto::{PeerId, SdpType};
//!
//! let small: PeerId = "AAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
//! let large: PeerId = "BAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
//! let (mut polite, mut impolite) = (Negotiation::new(&small, &large), Negotiation::new(&large, &small));
//! // Both offer at once.
//! polite.offered();
//! impolite.offered();
//! assert!(matches!(impolite.remote(SdpType::Offer), Step::Ignore(_)));
//! assert_eq!(polite.remote(SdpType::Offer), Step::Apply { rollback_first: true });
//! // The polite side answers the impolite one's offer, which completes it.
//! assert_eq!(impolite.remote(SdpType::Answer), Step::Apply { rollback_first: false });
//! ```

use confab_proto::{PeerId, SdpType};

/// What to do with a description that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Drop it, for the reason given (for the log).
    Ignore(&'static str),
    /// Set it as the remote description, after rolling our own offer back if so told.
    Apply { rollback_first: bool },
}

#[derive(Debug, Clone)]
pub struct Negotiation {
    polite: bool,
    /// We made an offer the peer has not answered yet.
    awaiting_answer: bool,
    /// Our tracks changed while an offer was out, or our offer was rolled back: another offer
    /// is due once the current exchange ends.
    offer_pending: bool,
}

impl Negotiation {
    /// The negotiation of our connection (as `me`) to `remote`.
    pub fn new(me: &PeerId, remote: &PeerId) -> Self {
        Self { polite: me < remote, awaiting_answer: false, offer_pending: false }
    }

    /// We set and sent an offer; it carries everything we send.
    pub fn offered(&mut self) {
        self.awaiting_answer = true;
        self.offer_pending = false;
    }

    /// Our tracks changed: whether to offer now. While an offer of ours is out, another is
    /// held back until it is answered ([`Negotiation::offer_due`]).
    pub fn wants_offer(&mut self) -> bool {
        if self.awaiting_answer {
            self.offer_pending = true;
        }
        !self.awaiting_answer
    }

    /// After an exchange ended (we answered, or our offer was answered): whether an offer held
    /// back is due now.
    pub fn offer_due(&mut self) -> bool {
        let due = self.offer_pending && !self.awaiting_answer;
        if due {
            self.offer_pending = false;
        }
        due
    }

    /// The peer rejoined signaling, so an offer of ours sent to its old id will never be
    /// answered: whether one was out (then roll it back; it is offered again once the next
    /// exchange ends).
    pub fn offer_lost(&mut self) -> bool {
        let lost = self.awaiting_answer;
        self.awaiting_answer = false;
        self.offer_pending |= lost;
        lost
    }

    /// A description of `kind` arrived from the peer.
    pub fn remote(&mut self, kind: SdpType) -> Step {
        match (kind, self.awaiting_answer) {
            (SdpType::Offer, true) if !self.polite => {
                Step::Ignore("offer collision: we are impolite, ours stands")
            }
            (SdpType::Offer, true) => {
                // Our offer is dropped; what it carried must be offered again afterwards.
                self.awaiting_answer = false;
                self.offer_pending = true;
                Step::Apply { rollback_first: true }
            }
            (SdpType::Answer, false) => Step::Ignore("an answer to no offer of ours"),
            (SdpType::Answer, true) => {
                self.awaiting_answer = false;
                Step::Apply { rollback_first: false }
            }
            (SdpType::Offer, false) => Step::Apply { rollback_first: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (PeerId, PeerId) {
        ("AAAAAAAAAAAAAAAAAAAAAA".parse().unwrap(), "BAAAAAAAAAAAAAAAAAAAAA".parse().unwrap())
    }

    /// Glare: both offer at once, whatever order the offers and answers arrive in, both end
    /// up on the impolite peer's offer and neither is left waiting.
    #[test]
    fn when_both_offer_at_once_the_impolite_offer_wins() {
        let (small, large) = ids();
        let mut polite = Negotiation::new(&small, &large);
        let mut impolite = Negotiation::new(&large, &small);
        polite.offered();
        impolite.offered();
        // The polite peer's offer reaches the impolite one first, or second: ignored either way.
        assert!(matches!(impolite.remote(SdpType::Offer), Step::Ignore(_)));
        assert_eq!(polite.remote(SdpType::Offer), Step::Apply { rollback_first: true });
        // The polite peer answers; nothing is pending on either side afterwards.
        assert_eq!(impolite.remote(SdpType::Answer), Step::Apply { rollback_first: false });
        assert!(!polite.awaiting_answer && !impolite.awaiting_answer);
        // The polite peer's own change, rolled back, is offered again once it has answered.
        assert!(!impolite.offer_due());
        assert!(polite.offer_due());
        // A renegotiation later, from the polite side, goes through normally.
        polite.offered();
        assert_eq!(impolite.remote(SdpType::Offer), Step::Apply { rollback_first: false });
        assert_eq!(polite.remote(SdpType::Answer), Step::Apply { rollback_first: false });
    }

    #[test]
    fn an_answer_to_no_offer_is_ignored() {
        let (small, large) = ids();
        let mut n = Negotiation::new(&small, &large);
        assert!(matches!(n.remote(SdpType::Answer), Step::Ignore(_)));
        n.offered();
        assert_eq!(n.remote(SdpType::Answer), Step::Apply { rollback_first: false });
        // A second answer to the same offer is a stray.
        assert!(matches!(n.remote(SdpType::Answer), Step::Ignore(_)));
    }

    /// The peer rejoined signaling while our offer was out, and offers itself: we, impolite,
    /// would ignore its offer while waiting for an answer that cannot come. Instead ours is
    /// dropped, theirs taken, and ours made again afterwards.
    #[test]
    fn an_offer_to_a_peer_that_rejoined_is_dropped_and_made_again() {
        let (small, large) = ids();
        let mut impolite = Negotiation::new(&large, &small);
        assert!(!impolite.offer_lost(), "nothing was out");
        impolite.offered();
        assert!(impolite.offer_lost());
        assert_eq!(impolite.remote(SdpType::Offer), Step::Apply { rollback_first: false });
        assert!(impolite.offer_due());
    }

    /// A track added while our offer is out waits for the answer, then goes in one offer.
    #[test]
    fn a_change_during_an_exchange_is_offered_once_it_ends() {
        let (small, large) = ids();
        let mut n = Negotiation::new(&small, &large);
        assert!(n.wants_offer(), "nothing out: offer at once");
        n.offered();
        assert!(!n.wants_offer(), "an offer is out: wait");
        assert!(!n.wants_offer());
        assert!(!n.offer_due(), "not before the answer");
        assert_eq!(n.remote(SdpType::Answer), Step::Apply { rollback_first: false });
        assert!(n.offer_due(), "one offer for both changes");
        assert!(!n.offer_due());
    }
}
