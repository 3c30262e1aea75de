/** Missed-call notifications: queued with the CDR, delivered by the dispatcher (SMS or e-mail). */
export { queueMissedCall, queueMissedCalls, missedCallsOf, isMissedCall, notifyTarget, missedCallPayload, NOTIFY_CHANNELS, type MissedCall, type MissedCallPayload, type NotifyChannel, type Queued } from './queue';
export { NotificationDispatcher, type DispatcherOptions, type RunReport } from './dispatcher';
export { createNotifyMetrics, SEND_RESULTS, type NotifyMetrics, type SendResult } from './metrics';
export { PermanentError, SmsGateway, SmtpMailer, smsRequest, missedCallMail, type SmsRequest, type MailMessage } from './transports';
export { notificationsCronJob } from './cron-job';
