DROP INDEX risk_acceptances_holding;
