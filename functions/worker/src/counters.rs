//! What one invocation did, emitted once as CloudWatch embedded metrics.

use shared::ai::Usage;
use shared::support::metrics::Metrics;

#[derive(Default)]
pub(crate) struct Counts {
    pub handled: usize,
    pub duplicates: usize,
    pub parked: usize,
    pub stale: usize,
    pub sent: usize,
    pub permanent_send_failures: usize,
    pub needs_attention: usize,
    pub statuses: usize,
    pub failed: usize,
    pub ai: Usage,
    pub ai_failures: usize,
    pub ai_handoffs: usize,
    pub desk_events: usize,
    pub desk_posts: usize,
    pub desk_failures: usize,
    /// Desk events not from a conversation this stack opened for the customer.
    pub desk_refused: usize,
    pub echoes: usize,
    pub timers: usize,
    pub sla_alerts: usize,
    pub sla_alert_failures: usize,
    /// Sends Meta may have taken without saying so.
    pub unknown_sends: usize,
    /// Of those, settled by a status (no second send), and sent again after the wait.
    pub unknown_sends_settled: usize,
    pub unknown_sends_resent: usize,
    pub erasures: usize,
    /// Retries of events of an erased conversation, ignored.
    pub erased_events: usize,
    /// Sends asked for through the platform API, and those refused (outside the window).
    pub api_sends: usize,
    pub api_sends_refused: usize,
    /// Customers on the suppression list by an opt-out word, and off it by an opt-in word.
    pub opt_outs: usize,
    pub opt_ins: usize,
    /// Meta's marketing preference changes applied to the suppression list.
    pub preferences: usize,
    /// Meta's WABA signals handled, and the alerts they raised.
    pub waba_signals: usize,
    pub waba_alerts: usize,
    /// Conversations opened in reply to a campaign send, and opt-outs after one, counted
    /// on their campaigns.
    pub campaign_replies: usize,
    pub campaign_opt_outs: usize,
    /// Events put on the hooks queue for the tenants' subscribers, and those a missing
    /// queue setting kept back.
    pub events_published: usize,
    pub events_unpublished: usize,
}

impl Counts {
    pub fn emit(&self) {
        let mut metrics = Metrics::new("worker");
        metrics
            .count("Handled", self.handled)
            .count("Duplicates", self.duplicates)
            .count("Parked", self.parked)
            .count("StaleMessages", self.stale)
            .count("Sent", self.sent)
            .count("PermanentSendFailures", self.permanent_send_failures)
            .count("NeedsAttention", self.needs_attention)
            .count("StatusUpdates", self.statuses)
            .count("FailedRecords", self.failed)
            .count("AiRequests", self.ai.requests as usize)
            .count("AiInputTokens", self.ai.input_tokens as usize)
            .count("AiOutputTokens", self.ai.output_tokens as usize)
            .count(
                "AiCacheWriteTokens",
                self.ai.cache_creation_input_tokens as usize,
            )
            .count(
                "AiCacheReadTokens",
                self.ai.cache_read_input_tokens as usize,
            )
            .count("AiFailures", self.ai_failures)
            .count("AiHandoffs", self.ai_handoffs)
            .count("DeskEvents", self.desk_events)
            .count("DeskPosts", self.desk_posts)
            .count("DeskFailures", self.desk_failures)
            .count("DeskEventsRefused", self.desk_refused)
            .count("BusinessEchoes", self.echoes)
            .count("Timers", self.timers)
            .count("SlaAlertsSent", self.sla_alerts)
            .count("SlaAlertFailures", self.sla_alert_failures)
            .count("UnknownSends", self.unknown_sends)
            .count("UnknownSendsSettled", self.unknown_sends_settled)
            .count("UnknownSendsResent", self.unknown_sends_resent)
            .count("Erasures", self.erasures)
            .count("ErasedEventsIgnored", self.erased_events)
            .count("ApiSends", self.api_sends)
            .count("ApiSendsRefused", self.api_sends_refused)
            .count("OptOuts", self.opt_outs)
            .count("OptIns", self.opt_ins)
            .count("Preferences", self.preferences)
            .count("WabaSignals", self.waba_signals)
            .count("WabaAlerts", self.waba_alerts)
            .count("CampaignReplies", self.campaign_replies)
            .count("CampaignOptOuts", self.campaign_opt_outs)
            .count("EventsPublished", self.events_published)
            .count("EventsUnpublished", self.events_unpublished);
        metrics.emit();
    }
}
